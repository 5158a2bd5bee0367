DROP TABLE widget_settings;
