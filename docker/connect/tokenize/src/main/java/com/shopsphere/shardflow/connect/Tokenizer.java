package com.shopsphere.shardflow.connect;

import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Pattern;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The keyed tokenizer of docs/contracts.md §4, the Java twin of Go's internal/tokenize:
 * the same value and key give the same landed form on both sides, which the pinned
 * vectors of test/vectors/tokenize.json hold both implementations to.
 *
 * <ul>
 *   <li>token: {@code tok_<key id>_<base64url, no padding, of HMAC-SHA256(key,
 *       "<column>\0<value>")[:16]>}, the value trimmed of surrounding white space first
 *       (Go's strings.TrimSpace: unicode.IsSpace, which is not Java's strip());
 *   <li>last4: the value's last 4 ASCII digits; bin: its first 6;
 *   <li>redact: free text with every card number replaced by its token (internal/tokenize
 *       redact.go states the rule).
 * </ul>
 *
 * No value passed in ever appears in an exception. Instances are safe for concurrent use.
 */
public final class Tokenizer {
    /** The shortest key accepted: HMAC-SHA256's block of entropy. */
    public static final int MIN_KEY_BYTES = 32;

    /** Starts every token. */
    public static final String PREFIX = "tok_";

    private static final int MAC_BYTES = 16;
    private static final Pattern KEY_ID = Pattern.compile("[a-z0-9]{1,16}");
    private static final Base64.Encoder B64 = Base64.getUrlEncoder().withoutPadding();

    /** A value a policy cannot apply to (too few digits): the message never holds it. */
    public static final class PolicyException extends Exception {
        private static final long serialVersionUID = 1L;
        private final String code;

        PolicyException(String code, String message) {
            super(message);
            this.code = code;
        }

        /** The reason code the consumer knows (Go: tokenize.markReasons). */
        public String code() {
            return code;
        }
    }

    private final String keyId;
    private final ThreadLocal<Mac> mac;

    /**
     * The tokenizer of key id {@code keyId} (shards.yaml tokenizer.key_id) and {@code key}
     * (at least {@link #MIN_KEY_BYTES} bytes; the key variable's bytes as Go reads them).
     */
    public Tokenizer(String keyId, byte[] key) {
        if (keyId == null || !KEY_ID.matcher(keyId).matches()) {
            throw new IllegalArgumentException("tokenizer key id is not 1-16 lowercase letters and digits");
        }
        if (key == null || key.length < MIN_KEY_BYTES) {
            throw new IllegalArgumentException(
                    "tokenizer " + keyId + ": key is shorter than " + MIN_KEY_BYTES + " bytes ("
                            + (key == null ? 0 : key.length) + " bytes)");
        }
        SecretKeySpec spec = new SecretKeySpec(key.clone(), "HmacSHA256");
        this.keyId = keyId;
        this.mac = ThreadLocal.withInitial(() -> {
            try {
                Mac m = Mac.getInstance("HmacSHA256");
                m.init(spec);
                return m;
            } catch (NoSuchAlgorithmException | InvalidKeyException e) {
                throw new IllegalStateException("HmacSHA256 is not available", e);
            }
        });
    }

    /** The key id recorded in tokens. */
    public String keyId() {
        return keyId;
    }

    /** The token of {@code value} in {@code column} (the token policy). */
    public String token(String column, String value) {
        Mac m = mac.get();
        m.reset();
        m.update(column.getBytes(StandardCharsets.UTF_8));
        m.update((byte) 0);
        m.update(trimSpace(value).getBytes(StandardCharsets.UTF_8));
        byte[] sum = m.doFinal();
        byte[] head = new byte[MAC_BYTES];
        System.arraycopy(sum, 0, head, 0, MAC_BYTES);
        return PREFIX + keyId + "_" + B64.encodeToString(head);
    }

    /** The last 4 ASCII digits of {@code value} (the last4 policy). */
    public static String last4(String value) throws PolicyException {
        return digits(value, 4, true);
    }

    /** The first 6 ASCII digits of {@code value} (the bin policy). */
    public static String bin(String value) throws PolicyException {
        return digits(value, 6, false);
    }

    private static String digits(String v, int n, boolean last) throws PolicyException {
        char[] d = new char[n];
        int got = 0;
        for (int i = 0; i < v.length() && got < n; i++) {
            char c = v.charAt(last ? v.length() - 1 - i : i);
            if (c >= '0' && c <= '9') {
                d[last ? n - 1 - got : got] = c;
                got++;
            }
        }
        if (got < n) {
            throw new PolicyException("fewer-digits", "too few digits: needs " + n);
        }
        return new String(d);
    }

    /** {@code text} with every card number replaced by its token in {@code column}. */
    public String redact(String column, String text) {
        List<int[]> spans = findPANs(text);
        if (spans.isEmpty()) {
            return text;
        }
        StringBuilder out = new StringBuilder(text.length() + spans.size() * 16);
        int prev = 0;
        for (int[] s : spans) {
            out.append(text, prev, s[0]);
            StringBuilder d = new StringBuilder(19);
            for (int i = s[0]; i < s[1]; i++) {
                char c = text.charAt(i);
                if (isDigit(c)) {
                    d.append(c);
                }
            }
            out.append(token(column, d.toString()));
            prev = s[1];
        }
        out.append(text, prev, text.length());
        return out.toString();
    }

    /**
     * The card numbers in {@code text} as [start, end) pairs of char indexes, by the rule
     * of internal/tokenize/redact.go: chains of digit groups joined by one to three of space,
     * dash and dot;
     * from each group, the longest span of whole groups with 13-19 digits passing Luhn,
     * groups of at most 6 digits when the span has more than one.
     */
    public static List<int[]> findPANs(String text) {
        List<int[]> out = new ArrayList<>();
        List<int[]> chain = new ArrayList<>();
        int i = 0;
        while (i < text.length()) {
            if (!isDigit(text.charAt(i))) {
                i++;
                continue;
            }
            int j = i;
            while (j < text.length() && isDigit(text.charAt(j))) {
                j++;
            }
            if (!chain.isEmpty() && !separated(text, chain.get(chain.size() - 1)[1], i)) {
                chainPANs(out, text, chain);
                chain.clear();
            }
            chain.add(new int[] {i, j});
            i = j;
        }
        chainPANs(out, text, chain);
        return out;
    }

    /** Whether text[from, to) joins two groups: one to three of space, dash and dot. */
    private static boolean separated(String text, int from, int to) {
        if (to - from < 1 || to - from > 3) {
            return false;
        }
        for (int k = from; k < to; k++) {
            char c = text.charAt(k);
            if (c != ' ' && c != '-' && c != '.') {
                return false;
            }
        }
        return true;
    }

    private static void chainPANs(List<int[]> out, String text, List<int[]> chain) {
        int i = 0;
        while (i < chain.size()) {
            int best = -1;
            int n = 0;
            StringBuilder digits = new StringBuilder(19);
            int[] first = chain.get(i);
            for (int j = i; j < chain.size(); j++) {
                int[] g = chain.get(j);
                if (j > i && (first[1] - first[0] > 6 || g[1] - g[0] > 6)) {
                    break;
                }
                n += g[1] - g[0];
                if (n > 19) {
                    break;
                }
                digits.append(text, g[0], g[1]);
                if (n >= 13 && luhn(digits)) {
                    best = j;
                }
            }
            if (best < 0) {
                i++;
                continue;
            }
            out.add(new int[] {first[0], chain.get(best)[1]});
            i = best + 1;
        }
    }

    static boolean luhn(CharSequence d) {
        int sum = 0;
        boolean dbl = false;
        for (int i = d.length() - 1; i >= 0; i--) {
            int v = d.charAt(i) - '0';
            if (dbl) {
                v *= 2;
                if (v > 9) {
                    v -= 9;
                }
            }
            sum += v;
            dbl = !dbl;
        }
        return sum % 10 == 0;
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    /** Go's strings.TrimSpace: leading and trailing unicode.IsSpace characters. */
    static String trimSpace(String s) {
        int a = 0;
        int b = s.length();
        while (a < b && isGoSpace(s.charAt(a))) {
            a++;
        }
        while (b > a && isGoSpace(s.charAt(b - 1))) {
            b--;
        }
        return s.substring(a, b);
    }

    /** Go's unicode.IsSpace (every such character is in the BMP). */
    static boolean isGoSpace(char c) {
        switch (c) {
            case '\t': case '\n': case 0x0B: case '\f': case '\r': case ' ':
            case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
            case 0x202F: case 0x205F: case 0x3000:
                return true;
            default:
                return c >= 0x2000 && c <= 0x200A;
        }
    }
}
