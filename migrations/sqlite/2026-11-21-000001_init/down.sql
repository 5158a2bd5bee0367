DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE contacts;
DROP TABLE team_members;
DROP TABLE agents;
DROP TABLE teams;
DROP TABLE settings;
