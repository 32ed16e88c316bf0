package com.shopsphere.shardflow.connect;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.source.SourceRecord;
import org.junit.jupiter.api.Test;

/** The transform on Debezium-shaped envelopes (the real worker runs it in make test-cdc). */
class TokenizeTest {
    static final String KEY = "shardflow-test-vector-key-k1-0123456789abcdef";
    static final String PAN = "4111111111111111";

    static final Schema ROW = SchemaBuilder.struct().name("shardflow.s00.public.payments.Value")
            .field("payment_id", Schema.STRING_SCHEMA)
            .field("card_number", Schema.OPTIONAL_STRING_SCHEMA)
            .field("card_holder", Schema.OPTIONAL_STRING_SCHEMA)
            .field("card_last4", Schema.OPTIONAL_STRING_SCHEMA)
            .field("amount_cents", Schema.INT64_SCHEMA)
            .optional().build();
    static final Schema SOURCE = SchemaBuilder.struct().name("io.debezium.connector.postgresql.Source")
            .field("schema", Schema.STRING_SCHEMA).field("table", Schema.STRING_SCHEMA).field("lsn", Schema.OPTIONAL_INT64_SCHEMA).build();
    static final Schema ENVELOPE = SchemaBuilder.struct().name("shardflow.s00.public.payments.Envelope")
            .field("before", ROW).field("after", ROW).field("source", SOURCE).field("op", Schema.STRING_SCHEMA).build();

    static Tokenize<SourceRecord> transform(String columns) {
        Tokenize<SourceRecord> t = new Tokenize<>();
        Map<String, String> cfg = new HashMap<>();
        cfg.put("key.id", "k1");
        cfg.put("key", KEY);
        cfg.put("columns", columns);
        t.configure(cfg);
        return t;
    }

    static Struct row(String pan, String holder, String last4) {
        return new Struct(ROW).put("payment_id", "p-1").put("card_number", pan).put("card_holder", holder)
                .put("card_last4", last4).put("amount_cents", 1999L);
    }

    static SourceRecord record(String table, Struct before, Struct after) {
        Struct env = new Struct(ENVELOPE).put("before", before).put("after", after)
                .put("source", new Struct(SOURCE).put("schema", "public").put("table", table).put("lsn", 42L)).put("op", "u");
        return new SourceRecord(Map.of("server", "s00"), Map.of("lsn", 42L), "shardflow.s00.public." + table, 0,
                Schema.STRING_SCHEMA, "p-1", ENVELOPE, env, 1700000000000L);
    }

    static final String COLUMNS = "payments.card_number:token,payments.card_holder:token,payments.card_last4:last4";

    @Test
    void tokenizesBeforeAndAfter() {
        Tokenizer tk = new Tokenizer("k1", KEY.getBytes(StandardCharsets.UTF_8));
        SourceRecord out = transform(COLUMNS).apply(record("payments", row(PAN, "Ada Lovelace", "1111"), row(PAN, "Ada Lovelace", "1111")));
        Struct env = (Struct) out.value();
        for (String side : new String[] {"before", "after"}) {
            Struct r = env.getStruct(side);
            assertEquals(tk.token("card_number", PAN), r.getString("card_number"), side);
            assertEquals(tk.token("card_holder", "Ada Lovelace"), r.getString("card_holder"), side);
            assertEquals("1111", r.getString("card_last4"), side);
            assertEquals("p-1", r.getString("payment_id"));
            assertEquals(1999L, r.getInt64("amount_cents"));
        }
        assertEquals("payments", env.getStruct("source").getString("table"));
        assertEquals("u", env.getString("op"));
        assertEquals("p-1", out.key());
        assertEquals(1700000000000L, out.timestamp());
        assertFalse(out.value().toString().contains(PAN));
        assertFalse(out.value().toString().contains("Lovelace"));
    }

    @Test
    void nullsAndAbsentRowsStay() {
        SourceRecord out = transform(COLUMNS).apply(record("payments", null, row(null, null, null)));
        Struct env = (Struct) out.value();
        assertNull(env.get("before"));
        assertNull(env.getStruct("after").get("card_number"));
    }

    @Test
    void aRowNoPolicyChangesIsNotCopied() {
        Tokenize<SourceRecord> t = transform(COLUMNS + ",payments.payment_id:redact");
        SourceRecord nulls = record("payments", null, row(null, null, null));
        assertSame(nulls, t.apply(nulls));
        // free text without a card number comes out as it went in
        SourceRecord text = record("payments", row(null, null, null), row(null, null, null).put("payment_id", "no card here 1234"));
        assertSame(text, t.apply(text));
        // one changed side copies the envelope; the unchanged side is carried as it was
        Struct before = row(null, null, null);
        SourceRecord changed = record("payments", before, row(PAN, null, null));
        Struct env = (Struct) t.apply(changed).value();
        assertSame(before, env.getStruct("before"));
        assertFalse(env.getStruct("after").getString("card_number").contains(PAN));
        assertEquals(PAN, ((Struct) changed.value()).getStruct("after").getString("card_number"), "the input record is not changed");
    }

    @Test
    void otherTablesAndRecordsPassUnchanged() {
        Tokenize<SourceRecord> t = transform(COLUMNS);
        SourceRecord orders = record("orders", null, row(PAN, "x", "1111"));
        assertSame(orders, t.apply(orders));
        SourceRecord heartbeat = new SourceRecord(Map.of(), Map.of(), "__debezium-heartbeat.shardflow.s00", 0,
                Schema.STRING_SCHEMA, "k", SchemaBuilder.struct().field("ts_ms", Schema.INT64_SCHEMA).build(), null, 0L);
        assertSame(heartbeat, t.apply(heartbeat));
        SourceRecord tombstone = new SourceRecord(Map.of(), Map.of(), "t", 0, Schema.STRING_SCHEMA, "k", null, null, 0L);
        assertSame(tombstone, t.apply(tombstone));
    }

    @Test
    void aValueThePolicyCannotTakeIsMarkedNotCarried() {
        SourceRecord out = transform(COLUMNS).apply(record("payments", null, row(PAN, "Ada", "12")));
        assertEquals(Tokenize.MARK_PREFIX + "fewer-digits", ((Struct) out.value()).getStruct("after").getString("card_last4"));
    }

    @Test
    void redactsFreeText() {
        Tokenizer tk = new Tokenizer("k1", KEY.getBytes(StandardCharsets.UTF_8));
        SourceRecord out = transform("payments.card_holder:redact").apply(record("payments", null, row(null, "call me, card 4111 1111 1111 1111", null)));
        assertEquals("call me, card " + tk.token("card_holder", PAN), ((Struct) out.value()).getStruct("after").getString("card_holder"));
    }

    @Test
    void aNonStringColumnFailsNamingItNotItsValue() {
        DataException e = assertThrows(DataException.class,
                () -> transform("payments.amount_cents:token").apply(record("payments", null, row(PAN, "Ada", "1111"))));
        assertTrue(e.getMessage().contains("payments.amount_cents"), e.getMessage());
        assertFalse(e.getMessage().contains("1999"), e.getMessage());
    }

    @Test
    void configErrorsNeverShowTheKey() {
        Map<String, String> cfg = new HashMap<>();
        cfg.put("key.id", "k1");
        cfg.put("columns", COLUMNS);
        cfg.put("key", "short-key-material");
        ConfigException e = assertThrows(ConfigException.class, () -> new Tokenize<SourceRecord>().configure(cfg));
        assertFalse(e.getMessage().contains("short-key-material"), e.getMessage());
        cfg.put("key", "${dir:tokenizer:key}");
        e = assertThrows(ConfigException.class, () -> new Tokenize<SourceRecord>().configure(cfg));
        assertTrue(e.getMessage().contains("not resolved"), e.getMessage());
        cfg.put("key", KEY);
        cfg.put("key.id", "K_1");
        assertThrows(ConfigException.class, () -> new Tokenize<SourceRecord>().configure(cfg));
        cfg.put("key.id", "k1");
        cfg.put("columns", "payments.card_number:mask");
        e = assertThrows(ConfigException.class, () -> new Tokenize<SourceRecord>().configure(cfg));
        assertTrue(e.getMessage().contains("policy"), e.getMessage());
        cfg.put("columns", "card_number:token");
        assertThrows(ConfigException.class, () -> new Tokenize<SourceRecord>().configure(cfg));
    }
}
