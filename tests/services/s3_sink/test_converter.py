"""Record values become the bytes Kafka Connect's JsonConverter + JsonFormat write.

The expected bytes below were produced by Jackson 2.18 on JDK 17 running the converter's
logic (the harness at the bottom, which the differential test runs when a JDK and
Jackson's jars are present).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from services.s3_sink.converter import (
    ConversionError,
    JsonLineConverter,
    java_double,
    java_hashmap_order,
    java_string_hash,
)

pytestmark = pytest.mark.unit

PIN_ROW = json.dumps(
    {
        "index": 7528,
        "unique_id": "fbe53c66-3442-4773-b19e-d3ec6f54dddf",
        "title": "No Title Data Available",
        "description": "No description available Story format",
        "poster_name": "User Info Error",
        "follower_count": "User Info Error",
        "tag_list": "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e",
        "is_image_or_video": "multi-video(story page format)",
        "image_src": "Image src error.",
        "downloaded": 0,
        "save_location": "Local save in /data/mens-fashion",
        "category": "mens-fashion",
    }
).encode()

GOLDEN = [
    (b'{"index":1,"title":"x"}', b'{"index":1,"title":"x"}'),
    (
        PIN_ROW,
        b'{"is_image_or_video":"multi-video(story page format)",'
        b'"unique_id":"fbe53c66-3442-4773-b19e-d3ec6f54dddf",'
        b'"save_location":"Local save in /data/mens-fashion","poster_name":"User Info Error",'
        b'"tag_list":"N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e","index":7528,'
        b'"description":"No description available Story format",'
        b'"title":"No Title Data Available","category":"mens-fashion",'
        b'"follower_count":"User Info Error","image_src":"Image src error.","downloaded":0}',
    ),
    (
        b'{"ind": 7528, "timestamp": "2020-08-28 03:52:47", "latitude": -89.9787, '
        b'"longitude": -173.293, "country": "Albania"}',
        b'{"country":"Albania","latitude":-89.9787,"ind":7528,'
        b'"timestamp":"2020-08-28 03:52:47","longitude":-173.293}',
    ),
    (
        b'{"ind": 2863, "first_name": "Dylan", "last_name": "Holmes", "age": 32, '
        b'"date_joined": "2016-10-23 14:06:51"}',
        b'{"last_name":"Holmes","date_joined":"2016-10-23 14:06:51","first_name":"Dylan",'
        b'"ind":2863,"age":32}',
    ),
    (
        b'{"a":1.0,"b":1e7,"c":-0.0,"d":0.0001,"e":123456789012345678901,"f":1e400,"g":100,'
        b'"h":1E2,"i":5e-324,"j":12345678.9,"k":-1.5e-7,"l":0.001}',
        b'{"a":1.0,"b":1.0E7,"c":0.0,"d":1.0E-4,"e":-5670419503621182411,"f":"Infinity",'
        b'"g":100,"h":100.0,"i":4.9E-324,"j":1.23456789E7,"k":-1.5E-7,"l":0.001}',
    ),
    (
        '{"s":"\\u001f\\u000b\\ud83d\\ude00 é \\u2028 \\"q\\" \\\\ / \\b\\f\\n\\r\\t",'
        '"raw":"😀","lone":"\\ud800x"}'.encode(),
        b'{"s":"\\u001F\\u000B\\uD83D\\uDE00 \xc3\xa9 \xe2\x80\xa8 \\"q\\" \\\\ / \\b\\f\\n\\r\\t",'
        b'"lone":"\\uD800x","raw":"\\uD83D\\uDE00"}',
    ),
    (
        b'{"z":{"b":[1,{"y":null,"x":true}],"a":"v"},"e":{},"l":[]}',
        b'{"e":{},"z":{"a":"v","b":[1,{"x":true,"y":null}]},"l":[]}',
    ),
    (
        json.dumps({f"key{i}": i for i in range(13)}).encode(),
        b'{"key1":1,"key2":2,"key0":0,"key5":5,"key6":6,"key3":3,"key4":4,"key9":9,'
        b'"key7":7,"key8":8,"key11":11,"key10":10,"key12":12}',
    ),
    # Nine keys in one bucket of 16 make the HashMap grow (twice) instead of treeifying.
    (
        b'{"c6":0,"c10":1,"c21":2,"c32":3,"c43":4,"c54":5,"c65":6,"c76":7,"c87":8,"c98":9}',
        b'{"c10":1,"c32":3,"c54":5,"c76":7,"c98":9,"c21":2,"c43":4,"c65":6,"c87":8,"c6":0}',
    ),
    (b'[{"b":1,"a":2},"s",3]', b'[{"a":2,"b":1},"s",3]'),
    (b'"just a string"', b'"just a string"'),
    (b" 42 ", b"42"),
    (b'{"a":1} trailing', b'{"a":1}'),
    (b'{"a":1,"b":2,"a":3}', b'{"a":3,"b":2}'),
    (b'{"Aa":1,"BB":2}', b'{"Aa":1,"BB":2}'),
]


@pytest.mark.parametrize(("value", "expected"), GOLDEN)
def test_values_are_written_as_jackson_writes_the_converted_value(
    value: bytes, expected: bytes
) -> None:
    assert JsonLineConverter().convert(value) == expected


@pytest.mark.parametrize("value", [None, b"", b"  \n", b"null"])
def test_tombstones_empty_and_json_null_are_null_values(value: bytes | None) -> None:
    assert JsonLineConverter().convert(value) is None


@pytest.mark.parametrize(
    "value", [b"not json", b'{"a":}', b"5x", b'{"a":NaN}', b"\xff", b"[1,]", b"truex", b"01"]
)
def test_what_jackson_rejects_is_a_conversion_error(value: bytes) -> None:
    with pytest.raises(ConversionError):
        JsonLineConverter().convert(value)


def test_string_hash_matches_java() -> None:
    # "Aa" and "BB" collide in Java; the emoji counts as two UTF-16 units.
    assert java_string_hash("Aa") == java_string_hash("BB") == 2112
    assert java_string_hash("index") == 100346066
    assert java_string_hash("😀") == (31 * 0xD83D + 0xDE00)


def test_hashmap_grows_past_twelve_keys_and_keeps_colliding_keys_in_insertion_order() -> None:
    keys = [f"key{i}" for i in range(13)]
    assert java_hashmap_order(keys) == (
        "key1", "key2", "key0", "key5", "key6", "key3", "key4",
        "key9", "key7", "key8", "key11", "key10", "key12",
    )  # fmt: skip
    assert java_hashmap_order(["BB", "Aa"]) == ("BB", "Aa")


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (1.0, "1.0"),
        (100.0, "100.0"),
        (0.001, "0.001"),
        (9999999.0, "9999999.0"),
        (1e7, "1.0E7"),
        (1.0e-4, "1.0E-4"),
        (-1.5e-7, "-1.5E-7"),
        (1.7976931348623157e308, "1.7976931348623157E308"),
        (5e-324, "4.9E-324"),
        (-0.0, "0.0"),
        (float("-inf"), '"-Infinity"'),
    ],
)
def test_doubles_print_as_double_to_string(x: float, expected: str) -> None:
    assert java_double(x) == expected


# ---- differential test against the real Jackson, when a JDK and the jars are here ---------

HARNESS = r"""
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.*;
import com.fasterxml.jackson.databind.node.*;
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;

// JsonConverter(schemas.enable=false).toConnectData, then JsonRecordWriterProvider.write.
public class Golden {
    static final ObjectMapper READER = new ObjectMapper()
        .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
        .setNodeFactory(JsonNodeFactory.withExactBigDecimals(true));
    static final ObjectMapper WRITER = new ObjectMapper();

    static Object toConnect(JsonNode n) {
        switch (n.getNodeType()) {
            case NULL: case MISSING: return null;
            case BOOLEAN: return n.booleanValue();
            case NUMBER: return n.isIntegralNumber() ? (Object) n.longValue() : (Object) n.doubleValue();
            case STRING: return n.textValue();
            case ARRAY: { List<Object> l = new ArrayList<>(); for (JsonNode e : n) l.add(toConnect(e)); return l; }
            case OBJECT: { Map<Object, Object> m = new HashMap<>();
                Iterator<Map.Entry<String, JsonNode>> it = n.fields();
                while (it.hasNext()) { Map.Entry<String, JsonNode> e = it.next(); m.put(e.getKey(), toConnect(e.getValue())); }
                return m; }
            default: throw new RuntimeException("unknown node");
        }
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "US-ASCII");
        String line;
        while ((line = in.readLine()) != null) {
            try {
                JsonNode tree = READER.readTree(Base64.getDecoder().decode(line));
                Object v = tree == null ? null : toConnect(tree);
                if (v == null) { out.println("NULL"); continue; }
                ByteArrayOutputStream bos = new ByteArrayOutputStream();
                JsonGenerator g = WRITER.getFactory().createGenerator(bos).setRootValueSeparator(null);
                g.writeObject(v);
                g.writeRaw(System.lineSeparator());
                g.flush();
                out.println("OK " + Base64.getEncoder().encodeToString(bos.toByteArray()));
            } catch (Exception e) {
                out.println("ERR");
            }
        }
    }
}
"""


def _jackson_classpath() -> str | None:
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        return None
    jars = Path(spec.origin).parent / "jars"
    found = [
        sorted(jars.glob(f"jackson-{name}-2.*.jar")) for name in ("core", "databind", "annotations")
    ]
    if not all(found) or not shutil.which("javac"):
        return None
    return ":".join(str(f[-1]) for f in found)


def _random_json(rnd: random.Random, depth: int = 0) -> str:
    alphabet = 'abcXYZ019_-. é中\U0001f600\u2028\x00\x01\x0b\x1f\x7f"\\/'

    def text() -> str:
        s = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 8)))
        return json.dumps(s, ensure_ascii=rnd.random() < 0.5)

    def number() -> str:
        # Magnitudes from 1e16 to 1e25 are left out: JDK 17 prints some of them with
        # extra digits (JDK-4511638), the converter follows JDK 19+.
        return rnd.choice(
            [
                str(rnd.randint(-(10**25), 10**25)),
                str(rnd.randint(-1000, 1000)),
                repr(rnd.uniform(-1e3, 1e3)),
                f"{rnd.uniform(-180, 180):.6f}",
                f"{rnd.randint(1, 9)}.{rnd.randint(0, 9999)}e{rnd.randint(-30, 15)}",
                rnd.choice(["0.0", "-0.0", "-0", "1E2", "1e400", "-1e400", "5e-324", "1e300"]),
            ]
        )

    kind = rnd.randint(0, 5 if depth < 3 else 2)
    if kind == 0:
        return text()
    if kind == 1:
        return number()
    if kind == 2:
        return rnd.choice(["true", "false", "null"])
    if kind in (3, 4):
        members = [f"{text()}:{_random_json(rnd, depth + 1)}" for _ in range(rnd.randint(0, 14))]
        return "{" + ",".join(members) + "}"
    return "[" + ",".join(_random_json(rnd, depth + 1) for _ in range(rnd.randint(0, 4))) + "]"


def test_random_values_match_jackson_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    classpath = _jackson_classpath()
    # `make setup` installs a JDK (Debian's default-jdk-headless): without one this fails.
    assert classpath is not None, "needs javac (run `make setup`) and Jackson's jars (pyspark's)"
    (tmp_path / "Golden.java").write_text(HARNESS)
    subprocess.run(
        ["javac", "-nowarn", "-cp", classpath, "-d", str(tmp_path), str(tmp_path / "Golden.java")],
        check=True,
        capture_output=True,
    )
    rnd = random.Random(20240601)
    values = [_random_json(rnd).encode("utf-8", "surrogatepass") for _ in range(2000)]
    values += [v + b" trailing" for v in values[:50]] + [b" " + v for v in values[50:100]]
    stdin = "".join(base64.b64encode(v).decode() + "\n" for v in values)
    replies = subprocess.run(
        ["java", "-cp", f"{classpath}:{tmp_path}", "Golden"],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    converter = JsonLineConverter()
    mismatches = []
    for value, reply in zip(values, replies, strict=True):
        try:
            line = converter.convert(value)
            ours = "NULL" if line is None else "OK " + base64.b64encode(line + b"\n").decode()
        except ConversionError:
            ours = "ERR"
        if ours != reply:
            mismatches.append((value, reply, ours))
    assert not mismatches, mismatches[:3]
    with capsys.disabled():
        print(f"\nJackson byte-exact comparison: {len(values)} values, converter == Jackson")
