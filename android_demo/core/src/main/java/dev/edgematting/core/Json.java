package dev.edgematting.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small, strict recursive-descent JSON parser (RFC 8259), enough for the model sidecar
 * files and the golden manifest; no dependency on org.json (absent on the plain JVM).
 *
 * <p>Values map to: object -> {@code Map<String,Object>} (insertion ordered, unmodifiable),
 * array -> {@code List<Object>} (unmodifiable), string -> {@link String}, number ->
 * {@link Double}, true/false -> {@link Boolean}, null -> {@code null}. Numbers are parsed
 * with {@link Double#parseDouble}, which rounds correctly, as Python's float() does.
 */
public final class Json {
    /** Malformed JSON text; the message gives the offset and what was expected. */
    public static final class ParseException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;
        public final int offset;

        ParseException(String message, int offset) {
            super(message + " at offset " + offset);
            this.offset = offset;
        }
    }

    private static final int MAX_DEPTH = 256;
    private final String s;
    private int pos;

    private Json(String s) {
        this.s = s;
    }

    /** Parses one JSON value; anything but whitespace after it is an error. */
    public static Object parse(String text) {
        if (text == null) throw new ParseException("null JSON text", 0);
        Json p = new Json(text);
        p.skipWs();
        Object v = p.value(0);
        p.skipWs();
        if (p.pos != text.length()) throw p.error("unexpected trailing characters");
        return v;
    }

    /** Parses a JSON text whose top level must be an object. */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> parseObject(String text) {
        Object v = parse(text);
        if (!(v instanceof Map)) throw new ParseException("top-level JSON value is not an object", 0);
        return (Map<String, Object>) v;
    }

    private ParseException error(String what) {
        return new ParseException(what, pos);
    }

    private void skipWs() {
        while (pos < s.length()) {
            char c = s.charAt(pos);
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') pos++;
            else break;
        }
    }

    private Object value(int depth) {
        if (depth > MAX_DEPTH) throw error("JSON nested too deeply");
        if (pos >= s.length()) throw error("unexpected end of JSON, expected a value");
        char c = s.charAt(pos);
        switch (c) {
            case '{':
                return object(depth);
            case '[':
                return array(depth);
            case '"':
                return string();
            case 't':
                literal("true");
                return Boolean.TRUE;
            case 'f':
                literal("false");
                return Boolean.FALSE;
            case 'n':
                literal("null");
                return null;
            default:
                if (c == '-' || (c >= '0' && c <= '9')) return number();
                throw error("unexpected character '" + c + "', expected a value");
        }
    }

    private void literal(String word) {
        if (!s.startsWith(word, pos)) throw error("invalid literal, expected '" + word + "'");
        pos += word.length();
    }

    private Map<String, Object> object(int depth) {
        pos++; // '{'
        Map<String, Object> m = new LinkedHashMap<>();
        skipWs();
        if (pos < s.length() && s.charAt(pos) == '}') {
            pos++;
            return Collections.unmodifiableMap(m);
        }
        while (true) {
            skipWs();
            if (pos >= s.length() || s.charAt(pos) != '"') throw error("expected a string key");
            String key = string();
            skipWs();
            if (pos >= s.length() || s.charAt(pos) != ':') throw error("expected ':' after key \"" + key + "\"");
            pos++;
            skipWs();
            if (m.containsKey(key)) throw error("duplicate key \"" + key + "\"");
            m.put(key, value(depth + 1));
            skipWs();
            if (pos >= s.length()) throw error("unexpected end of JSON inside an object");
            char c = s.charAt(pos++);
            if (c == '}') return Collections.unmodifiableMap(m);
            if (c != ',') {
                pos--;
                throw error("expected ',' or '}' in an object");
            }
        }
    }

    private List<Object> array(int depth) {
        pos++; // '['
        List<Object> a = new ArrayList<>();
        skipWs();
        if (pos < s.length() && s.charAt(pos) == ']') {
            pos++;
            return Collections.unmodifiableList(a);
        }
        while (true) {
            skipWs();
            a.add(value(depth + 1));
            skipWs();
            if (pos >= s.length()) throw error("unexpected end of JSON inside an array");
            char c = s.charAt(pos++);
            if (c == ']') return Collections.unmodifiableList(a);
            if (c != ',') {
                pos--;
                throw error("expected ',' or ']' in an array");
            }
        }
    }

    private String string() {
        pos++; // opening quote
        StringBuilder b = new StringBuilder();
        while (true) {
            if (pos >= s.length()) throw error("unterminated string");
            char c = s.charAt(pos++);
            if (c == '"') return b.toString();
            if (c < 0x20) {
                pos--;
                throw error("control character in string");
            }
            if (c != '\\') {
                b.append(c);
                continue;
            }
            if (pos >= s.length()) throw error("unterminated escape");
            char e = s.charAt(pos++);
            switch (e) {
                case '"': b.append('"'); break;
                case '\\': b.append('\\'); break;
                case '/': b.append('/'); break;
                case 'b': b.append('\b'); break;
                case 'f': b.append('\f'); break;
                case 'n': b.append('\n'); break;
                case 'r': b.append('\r'); break;
                case 't': b.append('\t'); break;
                case 'u': b.append(hex4()); break; // surrogate pairs pass through as two chars
                default:
                    pos--;
                    throw error("invalid escape '\\" + e + "'");
            }
        }
    }

    private char hex4() {
        if (pos + 4 > s.length()) throw error("truncated \\u escape");
        int v = 0;
        for (int i = 0; i < 4; i++) {
            int d = Character.digit(s.charAt(pos + i), 16);
            if (d < 0) throw error("invalid hex digit in \\u escape");
            v = v * 16 + d;
        }
        pos += 4;
        return (char) v;
    }

    private Double number() {
        int start = pos;
        if (s.charAt(pos) == '-') pos++;
        if (pos >= s.length()) throw error("truncated number");
        if (s.charAt(pos) == '0') {
            pos++;
        } else if (isDigit()) {
            while (isDigit()) pos++;
        } else {
            throw error("invalid number");
        }
        if (pos < s.length() && s.charAt(pos) == '.') {
            pos++;
            if (!isDigit()) throw error("expected a digit after '.'");
            while (isDigit()) pos++;
        }
        if (pos < s.length() && (s.charAt(pos) == 'e' || s.charAt(pos) == 'E')) {
            pos++;
            if (pos < s.length() && (s.charAt(pos) == '+' || s.charAt(pos) == '-')) pos++;
            if (!isDigit()) throw error("expected a digit in the exponent");
            while (isDigit()) pos++;
        }
        return Double.parseDouble(s.substring(start, pos));
    }

    private boolean isDigit() {
        return pos < s.length() && s.charAt(pos) >= '0' && s.charAt(pos) <= '9';
    }
}
