"""Tests for address templates, address and domain validation and collision suffixes."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app.directory.addressing import (
    AddressError,
    AddressTemplate,
    NameValues,
    display_domain,
    first_free,
    generate_address,
    generate_local_part,
    normalize_domain,
    normalize_smtp_address,
    parse_template,
    split_address,
    with_suffix,
)
from app.errors import PostroomError

ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")

MARK = NameValues(
    alias="markc", given="Mark", surname="Clark", initials="M", display="Mark M. Clark"
)


def gen(template: str, values: NameValues = MARK) -> str:
    """Parse a template and generate its address for the values."""
    return generate_address(parse_template(template), values)


def local(template: str, values: NameValues) -> str:
    """Parse a template and generate only its local part for the values."""
    return generate_local_part(parse_template(template), values)


# --- DESIGN §4 examples and generation --------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("%d@x.example", "MarkMClark@x.example"),
        ("%r._%d@x.example", "MarkM_Clark@x.example"),
        ("%g.%s@x.example", "Mark.Clark@x.example"),
        ("%1g%s@x.example", "MClark@x.example"),
        ("@x.example", "markc@x.example"),
        ("%m@x.example", "markc@x.example"),
        ("%i%s@x.example", "MClark@x.example"),
    ],
)
def test_design_examples(template: str, expected: str) -> None:
    assert gen(template) == expected


def test_empty_local_template_means_alias() -> None:
    template = parse_template("@Example.COM")
    assert template == AddressTemplate("", "example.com")
    assert str(template) == "@example.com"
    assert generate_local_part(template, MARK) == "markc"


def test_template_str_is_what_is_stored() -> None:
    assert str(parse_template("  %g.%s@Bücher.example ")) == "%g.%s@xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (NameValues("m", given="Jürgen", surname="Müller"), "Juergen.Mueller"),
        (NameValues("m", given="Ödön", surname="Straße"), "Oedoen.Strasse"),
        (NameValues("m", given="Ärne", surname="Über"), "Aerne.Ueber"),
        (NameValues("m", given="José", surname="Núñez"), "Jose.Nunez"),
        (NameValues("m", given="Øyvind", surname="Bjørnstad"), "Oyvind.Bjornstad"),
        (NameValues("m", given="Åsa", surname="Ærø"), "Asa.Aero"),
        (NameValues("m", given="François", surname="Lévêque"), "Francois.Leveque"),
        (NameValues("m", given="Łukasz", surname="Wałęsa"), "Lukasz.Walesa"),
        # A decomposed umlaut (u + U+0308) is transliterated like the composed one.
        (NameValues("m", given="Jo", surname="Mu\u0308ller"), "Jo.Mueller"),
    ],
)
def test_transliteration(values: NameValues, expected: str) -> None:
    assert local("%g.%s@x.example", values) == expected


def test_characters_a_local_part_cannot_hold_are_dropped() -> None:
    values = NameValues("m", display='A "b" (c), d: e; <f> @g [h] \\i\tj\x00k 张l')
    assert local("%d@x.example", values) == "Abcdefghijkl"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (NameValues("m", given="Sean", surname="O'Brien"), "Sean.O'Brien"),
        (NameValues("m", given="Anne", surname="Smith-Jones"), "Anne.Smith-Jones"),
    ],
)
def test_apostrophes_and_hyphens_are_kept(values: NameValues, expected: str) -> None:
    assert local("%g.%s@x.example", values) == expected


def test_case_is_kept() -> None:
    assert local("%s%m@x.example", NameValues("JSmith", surname="McDonald")) == "McDonaldJSmith"


def test_other_atext_in_values_is_kept() -> None:
    assert local("%d@x.example", NameValues("m", display="a+b_c!d")) == "a+b_c!d"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("%1g%s@x.example", "MClark"),
        ("%3s@x.example", "Cla"),
        ("%3i@x.example", "M"),  # shorter than N: the whole value
        ("%2d@x.example", "Ma"),
        ("%10d@x.example", "MarkMCl"),  # "Mark M. Cl", then cleaned
    ],
)
def test_truncation_takes_first_n_characters_as_stored(template: str, expected: str) -> None:
    assert local(template, MARK) == expected


def test_truncation_happens_before_cleaning() -> None:
    # "Jürgen"[:2] is "Jü", which cleans to "Jue"; cleaning first would give "Ju".
    assert local("%2g@x.example", NameValues("m", given="Jürgen")) == "Jue"
    # " Ann"[:2] is " A", which cleans to "A".
    assert local("%2g@x.example", NameValues("m", given=" Ann")) == "A"


def test_two_digit_length() -> None:
    values = NameValues("m", surname="Abcdefghijklmnop")
    assert local("%12s@x.example", values) == "Abcdefghijkl"


def test_replace_applies_to_following_tokens_only() -> None:
    values = NameValues("m", given="Anne Marie", surname="Van Dyke")
    assert local("%g%r _%s@x.example", values) == "AnneMarieVan_Dyke"
    assert local("%r _%g.%s@x.example", values) == "Anne_Marie.Van_Dyke"


def test_replace_with_same_character_deletes_it() -> None:
    values = NameValues("m", given="Sean", surname="O'Brien-Smith")
    assert local("%r''%g.%s@x.example", values) == "Sean.OBrien-Smith"
    assert local("%r--%r''%s@x.example", values) == "OBrienSmith"


def test_several_replacements_accumulate_in_order() -> None:
    values = NameValues("m", display="Ann-Marie van Dyke")
    assert local("%r-_%r _%d@x.example", values) == "Ann_Marie_van_Dyke"
    # Applied in order: a→b then b→c turns every a into c.
    assert local("%rab%rbc%m@x.example", NameValues("aXb")) == "cXc"


def test_replace_runs_before_transliteration() -> None:
    assert local("%rüu%s@x.example", NameValues("m", surname="Müller")) == "Muller"


def test_replace_does_not_touch_literal_text() -> None:
    assert local("%r.-a.%g@x.example", NameValues("m", given="J.R.")) == "a.J-R-"


def test_replace_into_a_dropped_character_deletes() -> None:
    assert local("%r_.%g@x.example", NameValues("m", given="a_b")) == "ab"


def test_percent_literal() -> None:
    assert local("%%%g@x.example", MARK) == "%Mark"
    assert local("a%%b@x.example", MARK) == "a%b"


def test_literal_text_is_kept_as_written() -> None:
    assert local("mail-%g_x@x.example", MARK) == "mail-Mark_x"
    assert local("info@x.example", MARK) == "info"


def test_empty_result_falls_back_to_alias() -> None:
    values = NameValues("jdoe", given="张", surname="伟", display="...")
    assert local("%g%s@x.example", values) == "jdoe"
    assert local("%g.%s@x.example", values) == "jdoe"  # the literal '.' alone is stripped
    assert local("%d@x.example", values) == "jdoe"
    assert local("%r._@x.example", values) == "jdoe"  # no value token at all


def test_fallback_alias_is_cleaned() -> None:
    assert local("%g@x.example", NameValues("jürgen m")) == "juergenm"


def test_alias_that_cleans_away_is_refused() -> None:
    with pytest.raises(AddressError, match="No address can be generated for the alias '张伟'"):
        generate_local_part(parse_template("@x.example"), NameValues("张伟"))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (NameValues("m", given="", surname="Clark"), "Clark"),  # leading dot goes
        (NameValues("m", given="Mark", surname=""), "Mark"),  # trailing dot goes
        (NameValues("m", given="Mark", initials="", surname="Clark"), "Mark.Clark"),  # '..'
    ],
)
def test_result_is_a_dot_atom(values: NameValues, expected: str) -> None:
    assert local("%g.%i.%s@x.example", values) == expected


def test_literal_dots_collapse() -> None:
    template = AddressTemplate("..%g...%s..", "x.example")  # not parseable; generation copes
    assert generate_local_part(template, MARK) == "Mark.Clark"


def test_local_part_is_capped_at_64_octets() -> None:
    values = NameValues("m", display="A" * 100)
    assert local("%d@x.example", values) == "A" * 64
    # A cut that ends on a dot drops the dot.
    values = NameValues("m", given="a" * 63, surname="b")
    assert local("%g.%s@x.example", values) == "a" * 63


def test_generate_with_invalid_stored_template_raises_address_error() -> None:
    with pytest.raises(AddressError, match="'%q'"):
        generate_local_part(AddressTemplate("%q", "x.example"), MARK)


# --- collisions ----------------------------------------------------------------------------


def test_with_suffix() -> None:
    assert with_suffix("jsmith@x.example", 2) == "jsmith2@x.example"
    assert with_suffix("jsmith@x.example", 0) == "jsmith@x.example"
    assert with_suffix("a" * 64 + "@x.example", 2) == "a" * 63 + "2@x.example"
    assert with_suffix("a" * 64 + "@x.example", 12) == "a" * 62 + "12@x.example"
    assert with_suffix("a" * 10 + "@x.example", 12) == "a" * 10 + "12@x.example"


def test_with_suffix_refuses_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        with_suffix("a@x.example", -1)


def test_first_free_plain_address() -> None:
    assert first_free("jsmith@x.example", lambda address: False) == ("jsmith@x.example", 0)


def test_first_free_counts_from_two() -> None:
    taken = {"jsmith@x.example"}
    assert first_free("jsmith@x.example", taken.__contains__) == ("jsmith2@x.example", 2)
    taken.add("jsmith2@x.example")
    assert first_free("jsmith@x.example", taken.__contains__) == ("jsmith3@x.example", 3)


def test_first_free_never_uses_one() -> None:
    seen: list[str] = []

    def is_taken(address: str) -> bool:
        seen.append(address)
        return address in {"jsmith@x.example", "jsmith1@x.example"}

    assert first_free("jsmith@x.example", is_taken) == ("jsmith2@x.example", 2)
    assert "jsmith1@x.example" not in seen


def test_first_free_with_case_insensitive_lookup() -> None:
    taken = {"jsmith@x.example", "jsmith2@x.example"}
    result = first_free("JSmith@x.example", lambda address: address.lower() in taken)
    assert result == ("JSmith3@x.example", 3)


def test_first_free_keeps_64_octets() -> None:
    address = "a" * 64 + "@x.example"
    result, suffix = first_free(address, {address}.__contains__)
    assert (result, suffix) == ("a" * 63 + "2@x.example", 2)


def test_split_address() -> None:
    assert split_address("a@b@x.example") == ("a@b", "x.example")
    with pytest.raises(AddressError, match="has no '@'"):
        split_address("nobody")


# --- domains -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", "example.com"),
        ("  Mail.Example.COM ", "mail.example.com"),
        ("example.com.", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("bücher\u3002example", "xn--bcher-kva.example"),  # ideographic full stop
        ("a-b.c0.example", "a-b.c0.example"),
        ("a" * 63 + ".example", "a" * 63 + ".example"),
    ],
)
def test_normalize_domain(text: str, expected: str) -> None:
    assert normalize_domain(text) == expected


def test_display_domain() -> None:
    assert display_domain("xn--bcher-kva.example") == "bücher.example"
    assert display_domain(normalize_domain("bücher.example")) == "bücher.example"
    assert display_domain("example.com") == "example.com"
    assert display_domain("xn--zz.example") == "xn--zz.example"  # not decodable: unchanged


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The domain is empty"),
        ("   ", "The domain is empty"),
        (".", "The domain is empty"),
        ("*.example.com", "'*.example.com' contains '*': wildcards are not supported by Postroom"),
        ("*.example.com", "list each domain"),
        ("localhost", "'localhost' has no dot; a mail domain needs at least two labels"),
        ("example", "separated by a dot"),
        ("1.2.3.4", "'1.2.3.4' is an IP address"),
        ("[1.2.3.4]", "'[1.2.3.4]' is an IP address literal"),
        ("[IPv6:::1]", "IP address literal"),
        ("::1", "is an IP address"),
        ("example.123", "is an IP address"),
        ("a..example", "has an empty label"),
        (".example.com", "has an empty label"),
        ("example.com..", "has an empty label"),
        ("ex_ample.com", "contains '_'; a host name uses only letters, digits, hyphens and dots"),
        ("exa mple.com", "contains a space"),
        ("a@b.com", "contains '@'"),
        ("-example.com", "'-example' of the domain '-example.com' starts or ends with a hyphen"),
        ("example-.com", "starts or ends with a hyphen"),
        ("a" * 64 + ".example", "is 64 characters long in DNS form; a label may have at most 63"),
        (".".join(["a" * 63] * 4), "is 255 characters long in DNS form; a domain name may"),
        ("a" * 5000 + ".example", "is 5008 characters long; a domain name may have at most 253"),
        # Invalid IDNs: the message quotes idna's reason.
        ("xn--zz.example", "not a valid internationalized domain name"),
        ("ab--cd.example", "disallowed hyphens in 3rd and 4th position"),
        ("\u0301a.example", "not a valid internationalized domain name"),  # leading combiner
        ("a\u200db.example", "not a valid internationalized domain name"),  # ZWJ out of context
        ("\u05d0a.example", "right-to-left label"),  # mixed Hebrew/Latin label
        ("\ufdd0.example", "not allowed"),  # a noncharacter
    ],
)
def test_normalize_domain_refuses(text: str, message: str) -> None:
    with pytest.raises(AddressError, match=re.escape(message)):
        normalize_domain(text)


def test_invalid_idn_message_names_the_label() -> None:
    with pytest.raises(AddressError) as caught:
        normalize_domain("ab--cd.example")
    assert "the label 'ab--cd' is refused by IDNA 2008" in str(caught.value)


def test_long_input_is_quoted_by_its_start() -> None:
    with pytest.raises(AddressError) as caught:
        normalize_domain("a" * 5000 + ".example")
    assert "'" + "a" * 99 + "…'" in str(caught.value)
    assert len(str(caught.value)) < 300


def test_address_error_is_a_postroom_error() -> None:
    with pytest.raises(PostroomError):
        normalize_domain("")


# --- template syntax errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("%q@x.example", "'%q' in '%q' is not a template token; use %g (given name)"),
        ("%q@x.example", "%rxy to replace x with y"),
        ("%g.%G@x.example", "did you mean %g?"),
        ("%r.@x.example", "%r needs two characters after it, e.g. %r._"),
        ("%r@x.example", "%r needs two characters after it"),
        ("%g%@x.example", "ends with a lone '%'; write %% for a literal %"),
        ("%1@x.example", "'%1' in '%1' is not a template token: %N (one or two digits)"),
        ("%1q@x.example", "'%1q' in '%1q' is not a template token"),
        ("%123g@x.example", "'%123'"),
        ("%0g@x.example", "'%0g' in '%0g' takes no characters; N in %Nx is 1 to 99"),
        ("%g.%s", "has no '@'; write [local-part-template]@domain"),
        ("", "has no '@'"),
        ("%g@", "has no domain after '@'"),
        ("%g@  ", "has no domain after '@'"),
        ("a@b@x.example", "contains '@'; a template has exactly one '@'"),
        ("%g@*.x.example", "wildcards are not supported by Postroom"),
        ("%g@bad_domain.example", "contains '_'"),
        ("%g@[10.0.0.1]", "IP address literal"),
        ("%g@xn--zz.example", "not a valid internationalized domain name"),
        ("%g@" + "a" * 64 + ".example", "a label may have at most 63"),
        ("%g %s@x.example", "contains a space, which an e-mail address cannot hold"),
        ('%g"x@x.example', "contains '\"'"),
        ("jürgen@x.example", "contains 'ü'"),
        ("%g,%s@x.example", "literal text may use only letters, digits, dots and"),
        (
            "a" * 65 + "@x.example",
            "The local part '" + "a" * 65 + "' is 65 octets; the limit is 64",
        ),
        ("a%%" + "b" * 63 + "@x.example", "is 65 octets; the limit is 64"),
        (".info@x.example", "has a dot at the start or end or two dots in a row"),
        ("in..fo@x.example", "two dots in a row"),
    ],
)
def test_parse_template_refuses(text: str, message: str) -> None:
    with pytest.raises(AddressError, match=re.escape(message)):
        parse_template(text)


@pytest.mark.parametrize(
    "text",
    [
        "%g.%s@x.example",
        "%1g%s@x.example",
        "%99d@x.example",
        "%r._%d@x.example",
        "%r%%%g@x.example",  # %r with '%' and '%': delete '%' from values
        "%%@x.example",
        "a" * 64 + "@x.example",
        "%g" + "a" * 100 + "@x.example",  # not fully literal: the result is cut instead
        "%r ä%g@x.example",  # %r arguments may be any characters
    ],
)
def test_parse_template_accepts(text: str) -> None:
    template = parse_template(text)
    assert str(template) == text


# --- concrete SMTP addresses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("jsmith@example.com", "jsmith@example.com"),
        ("  J.Smith@Example.COM  ", "J.Smith@example.com"),
        ("o'brien+tag@bücher.example", "o'brien+tag@xn--bcher-kva.example"),
        ("a" * 64 + "@example.com", "a" * 64 + "@example.com"),
        ("x@example.com.", "x@example.com"),
        ("!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~@example.com"),
    ],
)
def test_normalize_smtp_address(text: str, expected: str) -> None:
    assert normalize_smtp_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The address is empty"),
        ('"john smith"@example.com', "has a quoted local part; Postroom does not support quoted"),
        ('"a@b"@example.com', "quoted local part"),
        ("jsmith", "'jsmith' has no '@'; enter it as local-part@domain"),
        ("a@b@example.com", "contains 2 '@' characters; an address has exactly one"),
        ("@example.com", "has nothing before the '@'"),
        ("jsmith@", "has nothing after the '@'"),
        ("john smith@example.com", "contains a space before the '@'"),
        ("a,b@example.com", "contains ',' before the '@'; an unquoted local part cannot hold it"),
        ("jürgen@example.com", "only ASCII characters are supported in the local part"),
        ("<a@example.com>", "contains '<' before the '@'"),
        (".a@example.com", "The local part '.a' has a dot at the start or end"),
        ("a.@example.com", "has a dot at the start or end"),
        ("a..b@example.com", "two dots in a row"),
        ("a" * 65 + "@example.com", "is 65 octets; the limit is 64"),
        ("a@*.example.com", "wildcards are not supported by Postroom"),
        ("a@[1.2.3.4]", "IP address literal"),
        ("a@1.2.3.4", "is an IP address"),
        ("a@localhost", "needs at least two labels"),
        ("a@xn--zz.example", "not a valid internationalized domain name"),
        (
            "a" * 64 + "@" + ".".join(["b" * 63] * 3) + ".example",
            "an address may have at most 254",
        ),
    ],
)
def test_normalize_smtp_address_refuses(text: str, message: str) -> None:
    with pytest.raises(AddressError, match=re.escape(message)):
        normalize_smtp_address(text)


# --- properties ----------------------------------------------------------------------------

TEMPLATE_ALPHABET = "%@.gsidmr0123456789xqG _-'\"*[]üß:\u3002\u200d"
messy_text = st.text() | st.text(alphabet=TEMPLATE_ALPHABET)


@given(messy_text)
def test_parse_template_raises_only_address_error(text: str) -> None:
    try:
        template = parse_template(text)
    except AddressError:
        return
    assert parse_template(str(template)) == template


@given(messy_text)
def test_normalize_domain_raises_only_address_error(text: str) -> None:
    try:
        domain = normalize_domain(text)
    except AddressError:
        return
    assert domain.isascii() and domain == domain.lower()
    assert normalize_domain(domain) == domain


@given(messy_text)
def test_normalize_smtp_address_raises_only_address_error(text: str) -> None:
    try:
        address = normalize_smtp_address(text)
    except AddressError:
        return
    assert normalize_smtp_address(address) == address


template_piece = st.sampled_from(
    ["%g", "%s", "%i", "%d", "%m", "%1g", "%2s", "%12d", "%%", ".", "..", "-", "'", "_", "x"]
) | st.builds(lambda a, b: f"%r{a}{b}", st.characters(), st.characters())
template_text = st.lists(template_piece, max_size=8).map("".join) | st.text(
    alphabet=ATEXT + ".%gsidmr12", max_size=30
)
name_values = st.builds(
    NameValues,
    alias=st.text(alphabet=ATEXT, min_size=1, max_size=80),
    given=st.text(),
    surname=st.text(),
    initials=st.text(),
    display=st.text(),
)


@given(template_text, name_values)
def test_generated_local_part_is_a_valid_dot_atom(local_template: str, values: NameValues) -> None:
    try:
        template = parse_template(local_template + "@example.com")
    except AddressError:
        assume(False)
        raise
    result = generate_local_part(template, values)
    assert result
    assert DOT_ATOM.fullmatch(result), result
    assert len(result.encode()) <= 64
    assert normalize_smtp_address(f"{result}@example.com") == f"{result}@example.com"


def test_alias_keeps_its_dots_but_other_values_lose_theirs() -> None:
    values = NameValues("john.smith", given="J.", surname="Smith", display="J. Smith")
    assert generate_local_part(parse_template("@x.example"), values) == "john.smith"
    assert generate_local_part(parse_template("%m@x.example"), values) == "john.smith"
    assert generate_local_part(parse_template("%g%s@x.example"), values) == "JSmith"
    assert generate_local_part(parse_template("%d@x.example"), values) == "JSmith"
