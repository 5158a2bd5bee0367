DROP TABLE automation_runs;
DROP TABLE automations;
