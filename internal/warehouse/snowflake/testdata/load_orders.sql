-- one transaction per file; see internal/warehouse/snowflake.LoadFile

-- lock and drop the key's old rows
DELETE FROM ANALYTICS.RAW.orders WHERE _file = 'landing/orders/source=batch/shard=s03/dt=2026-11-24/orders__s03__20261124T1000Z__20261124T1100Z.parquet';

-- history, read after the lock (skip when the sha is the same)
SELECT data_sha256 FROM ANALYTICS.RAW._load_history WHERE file_key = 'landing/orders/source=batch/shard=s03/dt=2026-11-24/orders__s03__20261124T1000Z__20261124T1100Z.parquet';

-- load
COPY INTO ANALYTICS.RAW.orders
  FROM @RAW.LANDING_STAGE/landing/orders/source=batch/shard=s03/dt=2026-11-24/
  FILES = ('orders__s03__20261124T1000Z__20261124T1100Z.parquet')
  FILE_FORMAT = (TYPE = PARQUET USE_LOGICAL_TYPE = TRUE)
  MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE
  INCLUDE_METADATA = (_file = METADATA$FILENAME, _loaded_at = METADATA$START_SCAN_TIME)
  ON_ERROR = ABORT_STATEMENT
  FORCE = TRUE;

-- verify against the manifest (rows 1234, checksum 987654321098765432)
SELECT COUNT(*), TO_VARCHAR(COALESCE(SUM(TO_NUMBER(SUBSTR(MD5(CAST(order_id AS VARCHAR) || '|' || CAST(row_version AS VARCHAR)), 1, 15), 'XXXXXXXXXXXXXXX')), 0)) FROM ANALYTICS.RAW.orders WHERE _file = 'landing/orders/source=batch/shard=s03/dt=2026-11-24/orders__s03__20261124T1000Z__20261124T1100Z.parquet';

-- history entry
DELETE FROM ANALYTICS.RAW._load_history WHERE file_key = 'landing/orders/source=batch/shard=s03/dt=2026-11-24/orders__s03__20261124T1000Z__20261124T1100Z.parquet';
INSERT INTO ANALYTICS.RAW._load_history (file_key, table_name, shard, source, "ROWS", checksum, data_sha256, loaded_at)
  SELECT 'landing/orders/source=batch/shard=s03/dt=2026-11-24/orders__s03__20261124T1000Z__20261124T1100Z.parquet', 'orders', 's03', 'batch', 1234, '987654321098765432', '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    COALESCE((SELECT MAX(_loaded_at) FROM ANALYTICS.RAW.orders WHERE _file = 'landing/orders/source=batch/shard=s03/dt=2026-11-24/orders__s03__20261124T1000Z__20261124T1100Z.parquet'), CURRENT_TIMESTAMP());

-- window checksum (dq)
SELECT ... WHERE _source = 'batch' AND _shard = 's03' AND updated_at >= TO_TIMESTAMP_TZ('2026-11-24T10:00:00.000000Z') AND updated_at < TO_TIMESTAMP_TZ('2026-11-24T11:00:00.000000Z');
