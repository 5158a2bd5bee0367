DROP TABLE pipeline_progress;
