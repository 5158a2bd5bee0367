DROP TABLE bot_replies;
DROP TABLE bot_conversations;
DROP TABLE knowledge_chunks;
DROP TABLE knowledge_docs;
DROP TABLE prompts;
DROP TABLE bot_rules;
DROP TABLE bot_settings;
