"""Tests of schema loading, checking, message classes and the digest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mycelium_shm.errors import MyceliumError, SchemaError
from mycelium_shm.protocol import Message, Schema, parse_type

ROOT = Path(__file__).resolve().parent.parent
TRADING = ROOT / "schemas" / "trading.toml"

TWO = """
[[message]]
name = "A"
id = 1
fields = [{ name = "x", type = "u32" }, { name = "s", type = "str" }]

[[message]]
name = "B"
id = 2
fields = [{ name = "a", type = "A" }, { name = "v", type = "[f64]" }]
"""


def one(fields: str, name: str = "M", id_: int = 1) -> str:
    """A one-message schema text."""
    return f'[[message]]\nname = "{name}"\nid = {id_}\nfields = [{fields}]\n'


def test_trading_schema_loads() -> None:
    """The shipped trading schema loads with its five messages in file order."""
    s = Schema.load(TRADING)
    assert [m.name for m in s.messages] == ["MarketTick", "Signal", "OrderRequest", "Fill", "Stop"]
    assert [m.type_id for m in s.messages] == [1, 2, 3, 4, 5]
    assert 5 <= len(s.message_def("MarketTick").fields) <= 8


def test_lookups() -> None:
    """message_type, type_id_of and attribute access agree."""
    s = Schema.from_toml_str(TWO)
    assert s.message_type("A") is s.message_type(1) is s.A
    assert s.type_id_of(s.B) == 2
    assert s.classes == (s.A, s.B)
    assert s.message_def(s.B).name == "B"
    with pytest.raises(KeyError):
        s.message_type("C")
    with pytest.raises(KeyError):
        s.message_type(3)
    with pytest.raises(KeyError):
        s.type_id_of(int)
    with pytest.raises(AttributeError):
        s.C  # noqa: B018


def test_message_class_behaviour() -> None:
    """Generated classes have slots, keyword/positional init, eq and repr."""
    s = Schema.from_toml_str(TWO)
    a = s.A(x=1, s="hi")
    assert a == s.A(1, "hi")
    assert a != s.A(2, "hi")
    assert a != ("x", 1)
    assert repr(a) == "A(x=1, s='hi')"
    assert isinstance(a, Message)
    assert type(a).__slots__ == ("x", "s")
    assert type(a).__match_args__ == ("x", "s")
    with pytest.raises(AttributeError):
        a.y = 3  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        s.A(x=1)
    with pytest.raises(TypeError):
        hash(a)


def test_each_load_makes_new_classes() -> None:
    """Two loads of the same text give distinct classes but the same digest."""
    s1, s2 = Schema.from_toml_str(TWO), Schema.from_toml_str(TWO)
    assert s1.A is not s2.A
    assert s1.digest == s2.digest
    with pytest.raises(TypeError):
        s1.encode(s2.A(1, ""))


def test_empty_schema_and_empty_message() -> None:
    """A schema may have no messages, and a message no fields."""
    assert Schema.from_toml_str("").messages == ()
    s = Schema.from_toml_str(one(""))
    assert s.messages[0].fixed_size == 0
    assert repr(s.M()) == "M()"


def test_fixed_size() -> None:
    """fixed_size counts nested fixed messages and is None once a field varies."""
    s = Schema.load(ROOT / "tests" / "vectors" / "schema.toml")
    assert s.message_def("Scalars").fixed_size == 43
    assert s.message_def("Point").fixed_size == 16
    assert s.message_def("Fixed").fixed_size == 17
    assert s.message_def("Segment").fixed_size is None


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("u8", "u8"),
        (" f64 ", "f64"),
        ("bytes[ 16 ]", "bytes[16]"),
        ("[ bool ]", "[bool]"),
        ("Point", "Point"),
    ],
)
def test_parse_type_canonical(text: str, canonical: str) -> None:
    """Type strings parse to their canonical spelling."""
    assert parse_type(text).canonical == canonical


@pytest.mark.parametrize(
    "text", ["u128", "bytes[0]", "bytes[070]", "bytes[65537]", "[str]", "[Point]", "[[u8]]", ""]
)
def test_parse_type_rejects(text: str) -> None:
    """Malformed type strings are refused."""
    with pytest.raises(ValueError):
        parse_type(text)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (one('{ name = "x", type = "u33" }'), "field 'x': unknown type 'u33'"),
        (one('{ name = "x", type = "u8" }, { name = "x", type = "u8" }'), "duplicate field"),
        (one('{ name = "Bad", type = "u8" }'), "field 'Bad'"),
        (one('{ name = "type", type = "u8" }'), "keyword"),
        (one('{ name = "end", type = "u8" }'), "keyword"),
        (one('{ name = "x", type = "u8", extra = 1 }'), "unknown key"),
        (one('{ name = "x" }'), "field 'x': missing or non-string 'type'"),
        (one('{ name = "x", type = "Nope" }'), "no such message"),
        (one('{ name = "me", type = "M" }'), "contains itself"),
        (one("", name="bad"), "CamelCase"),
        (one("", name="Self"), "reserved"),
        (one("", id_=0), "0 is reserved"),
        (one("", id_=65536), "1..65535"),
        (one("") + one("", name="N"), "id 1 is already used by 'M'"),
        (one("") + one("", id_=2), "duplicate message name"),
        ('[[message]]\nname = "M"\nid = 1\n', "missing 'fields'"),
        ('[[message]]\nname = "M"\nfields = []\n', "missing 'id'"),
        ('[[message]]\nname = "M"\nid = "1"\nfields = []\n', "id must be an integer"),
        ('[[message]]\nname = "M"\nid = true\nfields = []\n', "id must be an integer"),
        ("version = 1\n", "unknown top-level key"),
        ("[[message]\n", "invalid TOML"),
        (one('{ name = "x", type = "u8", doc = 3 }'), "doc must be a string"),
    ],
)
def test_invalid_schemas(text: str, needle: str) -> None:
    """Each kind of invalid schema raises SchemaError naming the culprit."""
    with pytest.raises(SchemaError) as info:
        Schema.from_toml_str(text)
    assert needle in str(info.value)
    assert isinstance(info.value, (MyceliumError, ValueError))


def test_indirect_cycle_is_named() -> None:
    """A cycle through several messages is reported with its path."""
    text = one('{ name = "b", type = "B" }', name="A") + one(
        '{ name = "a", type = "A" }', name="B", id_=2
    )
    with pytest.raises(SchemaError, match="A -> B -> A"):
        Schema.from_toml_str(text)


def test_load_error_names_file(tmp_path: Path) -> None:
    """Errors from Schema.load start with the file path."""
    p = tmp_path / "bad.toml"
    p.write_text(one('{ name = "x", type = "nope" }'), encoding="utf-8")
    with pytest.raises(SchemaError, match=r"bad\.toml: message 'M', field 'x'"):
        Schema.load(p)


# -- digest ------------------------------------------------------------------


def test_digest_is_sha256_of_canonical_text() -> None:
    """The digest is SHA-256 over the documented canonical text."""
    s = Schema.from_toml_str(TWO)
    text = s.model.canonical_text()
    assert text == (
        "mycelium-schema 1\n"
        "message 1 A\nfield x u32\nfield s str\n"
        "message 2 B\nfield a A\nfield v [f64]\n"
    )
    assert s.digest == hashlib.sha256(text.encode()).digest()
    assert len(s.digest) == 32
    assert s.digest_hex == s.digest.hex()


def test_digest_ignores_comments_whitespace_docs_and_order() -> None:
    """Comments, spacing, docs, quoting and message order leave the digest alone."""
    reordered = """
    # a comment
    [[message]]
    name = 'B'      # literal strings
    id   = 2
    doc  = "B holds an A."
    fields = [
        {name="a", type="A", doc="nested"},
        {name="v", type="[ f64 ]"},
    ]

    [[message]]
    name="A"
    id=1
    fields=[{name="x",type="u32"},{name="s",type="str"}]
    """
    assert Schema.from_toml_str(reordered).digest == Schema.from_toml_str(TWO).digest


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('name = "x"', 'name = "y"'),
        ('type = "u32"', 'type = "i32"'),
        ('type = "[f64]"', 'type = "[f32]"'),
        ("id = 2", "id = 3"),
        ('name = "B"', 'name = "C"'),
    ],
)
def test_digest_changes_with_names_ids_and_types(old: str, new: str) -> None:
    """Renaming a field or message, or changing an id or type, changes the digest."""
    assert old in TWO
    changed = TWO.replace(old, new, 1)
    assert Schema.from_toml_str(changed).digest != Schema.from_toml_str(TWO).digest


def test_digest_changes_with_field_order() -> None:
    """Swapping two fields changes the digest."""
    swapped = TWO.replace(
        '{ name = "x", type = "u32" }, { name = "s", type = "str" }',
        '{ name = "s", type = "str" }, { name = "x", type = "u32" }',
    )
    assert swapped != TWO
    assert Schema.from_toml_str(swapped).digest != Schema.from_toml_str(TWO).digest


def test_repr_shows_digest_prefix() -> None:
    """The schema repr names its messages and starts of its digest."""
    s = Schema.from_toml_str(TWO)
    assert repr(s) == f"<Schema {s.digest_hex[:12]} [A, B]>"


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=20))
def test_parse_type_never_crashes(text: str) -> None:
    """Any type string parses or raises ValueError, and canonical forms re-parse to themselves."""
    try:
        t = parse_type(text)
    except ValueError:
        return
    assert parse_type(t.canonical) == t


@pytest.mark.parametrize(
    "text",
    [
        "message = 5\n",
        "message = [1]\n",
        "[[message]]\nname = 5\nid = 1\nfields = []\n",
        '[[message]]\nname = "M"\nid = 1.5\nfields = []\n',
        '[[message]]\nname = "M"\nid = 1\nfields = "x"\n',
        '[[message]]\nname = "M"\nid = 1\nfields = [1]\n',
        '[[message]]\nname = "M"\nid = 1\nfields = [{ name = 1, type = "u8" }]\n',
        '[[message]]\nname = "M"\nid = 1\nfields = [{ name = "x", type = 8 }]\n',
        '[[message]]\nname = "M"\nid = 1\nfields = [{ name = "x", type = "bytes[99999999999999]" }]\n',
    ],
)
def test_malformed_shapes(text: str) -> None:
    """Values of the wrong TOML type anywhere are a SchemaError, not a crash."""
    with pytest.raises(SchemaError):
        Schema.from_toml_str(text)
