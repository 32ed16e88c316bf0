-- The OLTP schema of every shard (docs/contracts.md §1). Applied by internal/fleet to the
-- database `shop` of each shard every time the fleet comes up, so every statement is
-- idempotent. Columns must match shards.yaml (tables[].columns); the schema-drift check
-- of extract-window compares them.
--
-- No foreign keys: rows of one order live on the customer's shard, but a bucket move
-- copies tables independently (with session_replication_role = replica) and cleanup
-- deletes them independently, so the shard never enforces cross-table references.

-- Roles are cluster-wide. They are created without a password; internal/fleet sets
-- LOGIN and the fleet's generated password afterwards.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shardflow_extract') THEN
    CREATE ROLE shardflow_extract NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shardflow_replication') THEN
    CREATE ROLE shardflow_replication NOLOGIN REPLICATION;
  END IF;
END $$;
GRANT pg_read_all_stats TO shardflow_extract;  -- sees other sessions' xact_start (closed windows)

-- The watermark and version stamp: updated_at is the writing transaction's start time,
-- row_version counts the row's changes. A bulk copy during a move runs with
-- session_replication_role = replica, which skips this trigger and keeps both values.
CREATE OR REPLACE FUNCTION shardflow_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  IF TG_OP = 'UPDATE' THEN
    NEW.row_version := OLD.row_version + 1;
  ELSE
    NEW.row_version := 1;
  END IF;
  RETURN NEW;
END
$$;

CREATE TABLE IF NOT EXISTS orders (
  order_id        uuid        NOT NULL,
  customer_id     bigint      NOT NULL,
  bucket          integer     NOT NULL,   -- registry.Bucket(customer_id), computed by the application
  status          text        NOT NULL,   -- placed | paid | shipped | delivered | cancelled | refunded
  currency        text        NOT NULL,   -- ISO 4217
  region          text        NOT NULL,
  total_cents     bigint      NOT NULL,
  refunded_cents  bigint      NOT NULL DEFAULT 0,
  deleted         boolean     NOT NULL DEFAULT false,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL,   -- set by shardflow_stamp()
  row_version     bigint      NOT NULL,   -- set by shardflow_stamp()
  PRIMARY KEY (order_id)
);
-- free text the customer types at checkout; may hold a card number (shards.yaml: redact)
ALTER TABLE orders ADD COLUMN IF NOT EXISTS note text;

CREATE TABLE IF NOT EXISTS order_items (
  order_id          uuid        NOT NULL,
  line_no           integer     NOT NULL,
  customer_id       bigint      NOT NULL,
  bucket            integer     NOT NULL,
  sku               text        NOT NULL,
  quantity          integer     NOT NULL,
  unit_price_cents  bigint      NOT NULL,
  deleted           boolean     NOT NULL DEFAULT false,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL,
  row_version       bigint      NOT NULL,
  PRIMARY KEY (order_id, line_no)
);

CREATE TABLE IF NOT EXISTS payments (
  payment_id    uuid        NOT NULL,
  order_id      uuid        NOT NULL,
  customer_id   bigint      NOT NULL,
  bucket        integer     NOT NULL,
  kind          text        NOT NULL,   -- charge | refund
  status        text        NOT NULL,   -- authorized | captured | refunded | failed
  amount_cents  bigint      NOT NULL,
  currency      text        NOT NULL,
  card_number   text,                   -- PCI: tokenized before landing
  card_holder   text,                   -- PCI: tokenized before landing
  card_expiry   text,                   -- PCI: never carried ("MM/YY")
  card_cvv      text,                   -- PCI: never carried
  card_last4    text,                   -- PCI: last four digits only
  deleted       boolean     NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL,
  row_version   bigint      NOT NULL,
  PRIMARY KEY (payment_id)
);

-- The only access path of extract and dq: keyset pagination on (watermark, pk).
CREATE INDEX IF NOT EXISTS orders_watermark_idx      ON orders      (updated_at, order_id);
CREATE INDEX IF NOT EXISTS order_items_watermark_idx ON order_items (updated_at, order_id, line_no);
CREATE INDEX IF NOT EXISTS payments_watermark_idx    ON payments    (updated_at, payment_id);
-- Application access paths (the workload's status updates and refunds).
CREATE INDEX IF NOT EXISTS orders_customer_idx   ON orders   (customer_id);
CREATE INDEX IF NOT EXISTS payments_order_idx    ON payments (order_id);

CREATE OR REPLACE TRIGGER orders_stamp      BEFORE INSERT OR UPDATE ON orders      FOR EACH ROW EXECUTE FUNCTION shardflow_stamp();
CREATE OR REPLACE TRIGGER order_items_stamp BEFORE INSERT OR UPDATE ON order_items FOR EACH ROW EXECUTE FUNCTION shardflow_stamp();
CREATE OR REPLACE TRIGGER payments_stamp    BEFORE INSERT OR UPDATE ON payments    FOR EACH ROW EXECUTE FUNCTION shardflow_stamp();

-- Bucket fences (docs/decisions/0017). `shardctl move` writes one row per (move, role,
-- bucket range) on each of the move's two shards; the trigger below refuses writes the
-- fence forbids, and extract-window, dq and tokenize cdc read the rows to judge changes
-- of a pending move by this shard's own markers. The latest epoch covering a bucket
-- decides. marker_at is this shard's own clock at its marker (NULL until written):
--   role from: incoming writes stop at the fence; marker_at is above every updated_at
--              and commit before it; state fenced, then moved after the switch
--   role to:   state incoming while copies arrive (apply workers only), then owned from
--              marker_at, which is above every copied updated_at
CREATE TABLE IF NOT EXISTS shardflow_bucket_fence (
  epoch      integer     NOT NULL,
  role       text        NOT NULL CHECK (role IN ('from', 'to')),
  bucket_lo  integer     NOT NULL,
  bucket_hi  integer     NOT NULL CHECK (bucket_hi >= bucket_lo),
  state      text        NOT NULL CHECK (state IN ('incoming', 'fenced', 'moved', 'owned')),
  peer       text        NOT NULL,   -- the move's other shard
  marker_at  timestamptz,
  marker_lsn pg_lsn,
  verified_at timestamptz,           -- from: `move verify` found every row on the target
  cleaned_at timestamptz,            -- from: `move cleanup` deleted the moved rows here
  changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (epoch, role, bucket_lo)
);

-- The fence, enforced on every write by the shard itself (the application's side of the
-- contract is pkg/routing, which maps these errors):
--   SF001 fenced: a move is switching the bucket; retry in a moment
--   SF002 the transaction started before the bucket was switched here; retry it
--   SF003 the bucket is still arriving here; write to the peer (the current owner)
--   SF004 the bucket moved to the peer; route there
-- Logical replication apply workers (session_replication_role = replica) do not fire
-- it: a move's copies arrive while the target is incoming. A move's cleanup deletes
-- pass only with shardflow.cleanup_epoch set to the move and after the source's marker.
CREATE OR REPLACE FUNCTION shardflow_fence_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  b integer;
  f record;
BEGIN
  IF TG_OP = 'DELETE' THEN
    b := OLD.bucket;
  ELSE
    b := NEW.bucket;
  END IF;
  SELECT epoch, role, state, peer, marker_at, bucket_lo, bucket_hi INTO f
    FROM shardflow_bucket_fence
   WHERE b BETWEEN bucket_lo AND bucket_hi
   ORDER BY epoch DESC
   LIMIT 1;
  IF FOUND THEN
    IF f.state = 'fenced' THEN
      RAISE EXCEPTION 'bucket % is fenced by move % to shard %: retry shortly', b, f.epoch, f.peer
        USING ERRCODE = 'SF001', DETAIL = format('move=%s bucket=%s lo=%s hi=%s peer=%s', f.epoch, b, f.bucket_lo, f.bucket_hi, f.peer);
    ELSIF f.state = 'owned' AND now() < f.marker_at THEN
      RAISE EXCEPTION 'the transaction started before bucket % was switched here by move %: retry it', b, f.epoch
        USING ERRCODE = 'SF002', DETAIL = format('move=%s bucket=%s lo=%s hi=%s peer=%s', f.epoch, b, f.bucket_lo, f.bucket_hi, f.peer);
    ELSIF f.state = 'incoming' THEN
      RAISE EXCEPTION 'bucket % is arriving here from shard % (move %): write to shard %', b, f.peer, f.epoch, f.peer
        USING ERRCODE = 'SF003', DETAIL = format('move=%s bucket=%s lo=%s hi=%s peer=%s', f.epoch, b, f.bucket_lo, f.bucket_hi, f.peer);
    ELSIF f.state = 'moved' THEN
      IF TG_OP <> 'DELETE' OR current_setting('shardflow.cleanup_epoch', true) IS DISTINCT FROM f.epoch::text THEN
        RAISE EXCEPTION 'bucket % moved to shard % (move %)', b, f.peer, f.epoch
          USING ERRCODE = 'SF004', DETAIL = format('move=%s bucket=%s lo=%s hi=%s peer=%s', f.epoch, b, f.bucket_lo, f.bucket_hi, f.peer);
      END IF;
      IF clock_timestamp() <= f.marker_at THEN
        RAISE EXCEPTION 'cleanup of move % before this shard''s clock passed its marker %', f.epoch, f.marker_at
          USING ERRCODE = 'SF001';
      END IF;
    END IF;
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER orders_fence      BEFORE INSERT OR UPDATE OR DELETE ON orders      FOR EACH ROW EXECUTE FUNCTION shardflow_fence_check();
CREATE OR REPLACE TRIGGER order_items_fence BEFORE INSERT OR UPDATE OR DELETE ON order_items FOR EACH ROW EXECUTE FUNCTION shardflow_fence_check();
CREATE OR REPLACE TRIGGER payments_fence    BEFORE INSERT OR UPDATE OR DELETE ON payments    FOR EACH ROW EXECUTE FUNCTION shardflow_fence_check();

-- CDC deletes carry the whole old row (bucket and version decide ownership).
ALTER TABLE orders      REPLICA IDENTITY FULL;
ALTER TABLE order_items REPLICA IDENTITY FULL;
ALTER TABLE payments    REPLICA IDENTITY FULL;

-- Debezium: heartbeat.action.query writes here so an idle shard's slot still advances;
-- the signal table drives incremental snapshots (backfills without locks).
CREATE TABLE IF NOT EXISTS shardflow_heartbeat (
  id      integer PRIMARY KEY,
  beat_at timestamptz
);
CREATE TABLE IF NOT EXISTS shardflow_signal (
  id   text PRIMARY KEY,
  type text NOT NULL,
  data text
);

-- The publication Debezium reads (publication.name = shardflow_cdc,
-- publication.autocreate.mode = disabled): the replication role does not own the tables.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'shardflow_cdc') THEN
    CREATE PUBLICATION shardflow_cdc FOR TABLE orders, order_items, payments, shardflow_heartbeat, shardflow_signal;
  END IF;
END $$;

GRANT SELECT ON orders, order_items, payments, shardflow_heartbeat, shardflow_signal, shardflow_bucket_fence TO shardflow_extract;
GRANT SELECT ON orders, order_items, payments TO shardflow_replication;
GRANT SELECT, INSERT, UPDATE ON shardflow_heartbeat TO shardflow_replication;
GRANT SELECT, INSERT, UPDATE, DELETE ON shardflow_signal TO shardflow_replication;
