DROP TABLE campaign_codes;
DROP TABLE quick_links;
DROP TABLE agent_handles;
DROP TABLE tasks;
DROP TABLE lead_events;
DROP TABLE lead_contacts;
DROP TABLE leads;
DROP TABLE lead_settings;
