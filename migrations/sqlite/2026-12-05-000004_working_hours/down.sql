DROP TABLE agent_hours;
