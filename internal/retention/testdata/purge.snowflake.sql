CREATE TABLE IF NOT EXISTS ANALYTICS.RAW._purge_log (
  file_key VARCHAR NOT NULL,
  table_name VARCHAR NOT NULL,
  shard VARCHAR NOT NULL,
  data_sha256 VARCHAR NOT NULL,
  rows_loaded NUMBER(38,0) NOT NULL,
  rows_deleted NUMBER(38,0) NOT NULL,
  rows_kept NUMBER(38,0) NOT NULL,
  newest_data TIMESTAMP_TZ NOT NULL,
  hot_cutoff TIMESTAMP_TZ NOT NULL,
  purged_at TIMESTAMP_TZ NOT NULL
);

DELETE FROM ANALYTICS.RAW.orders USING (
    SELECT x.order_id, x._shard, max(x.row_version) AS max_version
    FROM ANALYTICS.RAW.orders AS x
    INNER JOIN (SELECT DISTINCT order_id FROM ANALYTICS.RAW.orders WHERE _file = ?) AS f ON x.order_id = f.order_id
    GROUP BY x.order_id, x._shard
) AS m
WHERE ANALYTICS.RAW.orders._file = ? AND ANALYTICS.RAW.orders.order_id = m.order_id AND ANALYTICS.RAW.orders._shard = m._shard AND ANALYTICS.RAW.orders.row_version < m.max_version;

DELETE FROM ANALYTICS.RAW.order_items USING (
    SELECT x.order_id, x.line_no, x._shard, max(x.row_version) AS max_version
    FROM ANALYTICS.RAW.order_items AS x
    INNER JOIN (SELECT DISTINCT order_id, line_no FROM ANALYTICS.RAW.order_items WHERE _file = ?) AS f ON x.order_id = f.order_id AND x.line_no = f.line_no
    GROUP BY x.order_id, x.line_no, x._shard
) AS m
WHERE ANALYTICS.RAW.order_items._file = ? AND ANALYTICS.RAW.order_items.order_id = m.order_id AND ANALYTICS.RAW.order_items.line_no = m.line_no AND ANALYTICS.RAW.order_items._shard = m._shard AND ANALYTICS.RAW.order_items.row_version < m.max_version;

DELETE FROM ANALYTICS.RAW.payments USING (
    SELECT x.payment_id, x._shard, max(x.row_version) AS max_version
    FROM ANALYTICS.RAW.payments AS x
    INNER JOIN (SELECT DISTINCT payment_id FROM ANALYTICS.RAW.payments WHERE _file = ?) AS f ON x.payment_id = f.payment_id
    GROUP BY x.payment_id, x._shard
) AS m
WHERE ANALYTICS.RAW.payments._file = ? AND ANALYTICS.RAW.payments.payment_id = m.payment_id AND ANALYTICS.RAW.payments._shard = m._shard AND ANALYTICS.RAW.payments.row_version < m.max_version;

