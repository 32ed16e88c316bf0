package com.shopsphere.shardflow.connect;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The cross-language vectors: test/vectors/tokenize.json pins the landed form of each
 * input; internal/tokenize's TestCrossLanguageVectors checks the Go side against the same
 * file. Equal results on both sides mean a card seen by batch (Go) and by CDC (this
 * transform) gets one token.
 */
class VectorsTest {
    private static JsonNode vectors() throws IOException {
        String path = System.getProperty("shardflow.vectors", "../../../test/vectors/tokenize.json");
        return new ObjectMapper().readTree(new File(path));
    }

    @Test
    void everyVectorLandsAsPinned() throws IOException {
        JsonNode v = vectors();
        Map<String, Tokenizer> toks = new HashMap<>();
        for (JsonNode k : v.get("keys")) {
            toks.put(k.get("id").asText(), new Tokenizer(k.get("id").asText(), k.get("key").asText().getBytes(StandardCharsets.UTF_8)));
        }
        int n = 0;
        for (JsonNode c : v.get("cases")) {
            Tokenizer t = toks.get(c.get("key").asText());
            String policy = c.get("policy").asText();
            String column = c.get("column").asText();
            String value = c.get("value").asText();
            String want = c.has("want") ? c.get("want").asText() : "";
            String error = c.has("error") ? c.get("error").asText() : "";
            String got;
            String code = "";
            try {
                switch (policy) {
                    case "token": got = t.token(column, value); break;
                    case "last4": got = Tokenizer.last4(value); break;
                    case "bin": got = Tokenizer.bin(value); break;
                    case "redact": got = t.redact(column, value); break;
                    default: throw new AssertionError("unknown policy " + policy);
                }
            } catch (Tokenizer.PolicyException e) {
                got = "";
                code = e.code();
            }
            String what = "case " + n + " (" + policy + " " + column + ", " + c.path("note").asText() + ")";
            assertEquals(want, got, what);
            assertEquals(error, code, what);
            n++;
        }
        assertTrue(n >= 30, "only " + n + " vectors");
    }

    @Test
    void trimsAsGoDoes() {
        // Go's unicode.IsSpace, not Character.isWhitespace nor String.strip
        assertEquals("x", Tokenizer.trimSpace("\u00a0\u2007x\u202f\u3000"));
        assertEquals("\u001fx\u001c", Tokenizer.trimSpace("\u001fx\u001c"));
    }
}
