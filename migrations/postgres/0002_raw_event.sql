-- Each event as it was received (JSON, after decompression), compressed with zstd (under 512 bytes: as is); NULL for
-- events stored before this column existed.
ALTER TABLE events ADD COLUMN raw BYTEA;
