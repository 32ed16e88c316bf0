package com.shopsphere.shardflow.connect;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.config.types.Password;
import org.apache.kafka.connect.connector.ConnectRecord;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.transforms.Transformation;

/**
 * A Kafka Connect Single Message Transform that applies shards.yaml's PCI policies to
 * Debezium change events before the converter serializes them, so no card number or card
 * holder name is ever written to a Kafka topic (docs/pci.md). It rewrites the {@code
 * before} and {@code after} rows of an envelope whose {@code source.table} has configured
 * columns; every other record (heartbeats, signals, logical messages, other tables)
 * passes unchanged.
 *
 * <p>Configuration (rendered by {@code shardctl connectors render}, never by hand):
 *
 * <ul>
 *   <li>{@code key.id}: tokenizer.key_id, recorded in every token;
 *   <li>{@code key}: the key, always a config-provider reference the worker resolves
 *       ({@code ${dir:tokenizer:<k8s_key>}}), so it is in no stored config;
 *   <li>{@code columns}: {@code <table>.<column>:<policy>,...}, policy token, last4, bin
 *       or redact.
 * </ul>
 *
 * <p>A value its policy cannot apply to (last4 or bin with too few digits) is replaced by
 * {@code !shardflow-pci-error:<code>}: the task goes on (one bad value must not stop a
 * shard's stream) and the consumer quarantines that event (Go: tokenize.Verifier). A
 * non-string value in a configured column is a configuration error and fails the task,
 * naming the table and column; no exception ever carries a value or the key.
 */
public final class Tokenize<R extends ConnectRecord<R>> implements Transformation<R> {
    /** Written in place of a value the policy cannot apply to; a reason code follows. */
    public static final String MARK_PREFIX = "!shardflow-pci-error:";

    static final String KEY_ID = "key.id";
    static final String KEY = "key";
    static final String COLUMNS = "columns";

    /** The configuration the transform accepts. */
    public static final ConfigDef CONFIG_DEF = new ConfigDef()
            .define(KEY_ID, ConfigDef.Type.STRING, ConfigDef.NO_DEFAULT_VALUE, ConfigDef.Importance.HIGH,
                    "tokenizer.key_id of shards.yaml: 1-16 lowercase letters and digits, in every token")
            .define(KEY, ConfigDef.Type.PASSWORD, ConfigDef.NO_DEFAULT_VALUE, ConfigDef.Importance.HIGH,
                    "the tokenizer key (at least 32 bytes), as a config-provider reference such as ${dir:tokenizer:key}")
            .define(COLUMNS, ConfigDef.Type.LIST, ConfigDef.NO_DEFAULT_VALUE, ConfigDef.Importance.HIGH,
                    "<table>.<column>:<policy> entries, policy token, last4, bin or redact");

    enum Policy { TOKEN, LAST4, BIN, REDACT }

    private Tokenizer tokenizer;
    private Map<String, Map<String, Policy>> tables;

    @Override
    public void configure(Map<String, ?> props) {
        Map<String, Object> v = CONFIG_DEF.parse(props);
        String keyId = (String) v.get(KEY_ID);
        Password key = (Password) v.get(KEY);
        if (key.value().startsWith("${")) {
            throw new ConfigException(KEY, "[hidden]",
                    "the key reference was not resolved: is the worker's config provider set (config.providers) and the key file present?");
        }
        try {
            tokenizer = new Tokenizer(keyId, key.value().getBytes(StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
            throw new ConfigException(e.getMessage());
        }
        tables = parseColumns(castList(v.get(COLUMNS)));
    }

    @SuppressWarnings("unchecked")
    private static List<String> castList(Object o) {
        return (List<String>) o;
    }

    static Map<String, Map<String, Policy>> parseColumns(List<String> entries) {
        Map<String, Map<String, Policy>> out = new HashMap<>();
        for (String e : entries) {
            String entry = e.trim();
            int colon = entry.lastIndexOf(':');
            int dot = entry.indexOf('.');
            if (colon < 0 || dot <= 0 || dot > colon - 2) {
                throw new ConfigException(COLUMNS, entry, "want <table>.<column>:<policy>");
            }
            Policy p;
            switch (entry.substring(colon + 1)) {
                case "token": p = Policy.TOKEN; break;
                case "last4": p = Policy.LAST4; break;
                case "bin": p = Policy.BIN; break;
                case "redact": p = Policy.REDACT; break;
                default:
                    throw new ConfigException(COLUMNS, entry, "policy is not token, last4, bin or redact");
            }
            out.computeIfAbsent(entry.substring(0, dot), t -> new HashMap<>()).put(entry.substring(dot + 1, colon), p);
        }
        return out;
    }

    @Override
    public R apply(R record) {
        if (!(record.value() instanceof Struct)) {
            return record;
        }
        Struct env = (Struct) record.value();
        Schema schema = env.schema();
        if (schema.field("source") == null || schema.field("after") == null || schema.field("before") == null) {
            return record;
        }
        Object src = env.get("source");
        if (!(src instanceof Struct) || ((Struct) src).schema().field("table") == null) {
            return record;
        }
        String table = ((Struct) src).getString("table");
        Map<String, Policy> cols = table == null ? null : tables.get(table);
        if (cols == null) {
            return record;
        }
        Object before = env.get("before");
        Object after = env.get("after");
        Struct newBefore = before instanceof Struct ? row(table, (Struct) before, cols) : null;
        Struct newAfter = after instanceof Struct ? row(table, (Struct) after, cols) : null;
        if (newBefore == before && newAfter == after) {
            // no configured column holds a value its policy changes (all null, or free
            // text without a card number): the record leaves as it came, not copied
            return record;
        }
        Struct out = new Struct(schema);
        for (Field f : schema.fields()) {
            Object val = env.get(f);
            if (f.name().equals("before") && val instanceof Struct) {
                val = newBefore;
            } else if (f.name().equals("after") && val instanceof Struct) {
                val = newAfter;
            }
            out.put(f, val);
        }
        return record.newRecord(record.topic(), record.kafkaPartition(), record.keySchema(), record.key(),
                schema, out, record.timestamp(), record.headers());
    }

    /**
     * The row {@code in} with the policies of {@code cols} applied: {@code in} itself when
     * no value changes, otherwise a copy (a Struct's put validates every field, so copying
     * every row of a table with a configured column costs more than the policies do).
     */
    private Struct row(String table, Struct in, Map<String, Policy> cols) {
        Struct out = null;
        for (Map.Entry<String, Policy> c : cols.entrySet()) {
            Field f = in.schema().field(c.getKey());
            if (f == null) {
                continue;
            }
            Object val = in.get(f);
            if (val == null) {
                continue;
            }
            Policy p = c.getValue();
            if (!(val instanceof String)) {
                throw new DataException("tokenize: column " + table + "." + f.name() + " is " + f.schema().type()
                        + ", policy " + p.name().toLowerCase() + " needs a string column (shards.yaml and the table disagree)");
            }
            String landed = landed(f.name(), (String) val, p);
            if (landed.equals(val)) {
                continue;
            }
            if (out == null) {
                out = new Struct(in.schema());
                for (Field g : in.schema().fields()) {
                    out.put(g, in.get(g));
                }
            }
            out.put(f, landed);
        }
        return out == null ? in : out;
    }

    private String landed(String column, String value, Policy p) {
        try {
            switch (p) {
                case TOKEN: return tokenizer.token(column, value);
                case LAST4: return Tokenizer.last4(value);
                case BIN: return Tokenizer.bin(value);
                default: return tokenizer.redact(column, value);
            }
        } catch (Tokenizer.PolicyException e) {
            return MARK_PREFIX + e.code();
        }
    }

    @Override
    public ConfigDef config() {
        return CONFIG_DEF;
    }

    @Override
    public void close() {
        tokenizer = null;
    }
}
