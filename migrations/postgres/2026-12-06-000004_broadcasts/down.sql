DROP TABLE number_pacing;
DROP TABLE broadcast_recipients;
DROP TABLE broadcasts;
