package dev.edgematting.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {
    @Test
    public void parsesValues() {
        Map<String, Object> m = Json.parseObject(
                " {\"a\": [1, -2.5e2, 0.1, true, false, null], \"s\": \"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\", \"o\": {}, \"e\": []}\n");
        List<?> a = (List<?>) m.get("a");
        assertEquals(1.0, (Double) a.get(0), 0);
        assertEquals(-250.0, (Double) a.get(1), 0);
        assertEquals(0.1, (Double) a.get(2), 0);
        assertEquals(Boolean.TRUE, a.get(3));
        assertEquals(Boolean.FALSE, a.get(4));
        assertNull(a.get(5));
        assertEquals("q\"\\/\b\f\n\r\t\u00e9\ud83d\ude00", m.get("s"));
        assertTrue(((Map<?, ?>) m.get("o")).isEmpty());
        assertTrue(((List<?>) m.get("e")).isEmpty());
        assertEquals(List.of("a", "s", "o", "e"), List.copyOf(m.keySet())); // order kept
    }

    @Test
    public void rejectsMalformedText() {
        String[] bad = {"", "{", "{\"a\" 1}", "{\"a\": 1,}", "[1, 2", "[01]", "[1.]", "[.5]", "[-]", "{\"a\": tru}",
            "\"abc", "\"\\x\"", "\"\\u12g4\"", "{\"a\": 1} x", "{a: 1}", "[1e]", "{\"a\": 1, \"a\": 2}", "\"tab\there\""};
        for (String s : bad) {
            try {
                Json.parse(s);
                fail("accepted malformed JSON: " + s);
            } catch (Json.ParseException expected) {
                assertTrue(expected.getMessage().contains("offset"));
            }
        }
    }
}
