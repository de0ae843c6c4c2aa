"""Tests for app.directory.filters: RFC 4515 parsing, evaluation, canonical text, refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.directory.filters import (
    And,
    Approx,
    Equality,
    FilterError,
    GreaterOrEqual,
    LdapFilter,
    LessOrEqual,
    Not,
    Or,
    Presence,
    Substring,
    attribute_names,
    matches,
    parse_filter,
)
from app.errors import PostroomError

MARK = {
    "objectClass": ["top", "person", "organizationalPerson", "user"],
    "givenName": "Mark",
    "sn": "Clark",
    "displayName": "Mark M. Clark",
    "mailNickname": "markc",
    "company": "Contoso",
    "department": "Sales",
    "employeeNumber": "99",
    "proxyAddresses": ["SMTP:markc@contoso.com", "smtp:mark.clark@contoso.com"],
    "telephoneNumber": None,
    "title": "",
}


# --- parsing into the right objects -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(sn=Smith)", Equality("sn", "Smith")),
        ("(mailNickname=*)", Presence("mailNickname")),
        ("(sn=Sm*th*)", Substring("sn", "Sm", ("th",), "")),
        ("(sn=*ith)", Substring("sn", "", (), "ith")),
        ("(sn=Sm*)", Substring("sn", "Sm", (), "")),
        ("(cn=*a*b*)", Substring("cn", "", ("a", "b"), "")),
        ("(employeeNumber>=100)", GreaterOrEqual("employeeNumber", "100")),
        ("(employeeNumber<=100)", LessOrEqual("employeeNumber", "100")),
        ("(cn~=marcclark)", Approx("cn", "marcclark")),
        ("(!(sn=Smith))", Not(Equality("sn", "Smith"))),
        ("(&(a=1)(b=2))", And((Equality("a", "1"), Equality("b", "2")))),
        ("(|(a=1)(b=2))", Or((Equality("a", "1"), Equality("b", "2")))),
        ("(&)", And(())),
        ("(|)", Or(())),
        ("(sn=)", Equality("sn", "")),
        ("(2.5.4.4=Smith)", Equality("2.5.4.4", "Smith")),
        ("(mail;lang-de=x)", Equality("mail", "x")),
        ("(cn=John Smith )", Equality("cn", "John Smith ")),
    ],
)
def test_parses_each_form(text: str, expected: LdapFilter) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r"(cn=a\2ab)", "a*b"),
        (r"(cn=\28x\29)", "(x)"),
        (r"(cn=C:\5cTemp)", "C:\\Temp"),
        (r"(cn=nul\00byte)", "nul\x00byte"),
        (r"(cn=\2A\5C)", "*\\"),
        (r"(cn=stra\c3\9fe)", "straße"),
        ("(cn=straße)", "straße"),
    ],
)
def test_escapes_decode_to_literal_characters(text: str, value: str) -> None:
    assert parse_filter(text) == Equality("cn", value)


def test_escaped_star_is_literal_in_substring_pieces() -> None:
    assert parse_filter(r"(cn=a\2a*\28b\29*c\5c)") == Substring("cn", "a*", ("(b)",), "c\\")


def test_whitespace_between_components_is_tolerated() -> None:
    assert parse_filter("  (& (a=1)\n\t(| (b=2) (c=3) ) (! (d=4)) )  ") == And(
        (
            Equality("a", "1"),
            Or((Equality("b", "2"), Equality("c", "3"))),
            Not(Equality("d", "4")),
        )
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sn=Smith", Equality("sn", "Smith")),
        ("  mailNickname=*  ", Presence("mailNickname")),
        ("&(a=1)(b=2)", And((Equality("a", "1"), Equality("b", "2")))),
        ("!(a=1)", Not(Equality("a", "1"))),
    ],
)
def test_filter_without_outer_parentheses_is_accepted(text: str, expected: LdapFilter) -> None:
    assert parse_filter(text) == expected


def test_attribute_names_are_lowercased_and_collected() -> None:
    f = parse_filter("(&(objectClass=user)(|(Company=Contoso)(!(SN=x)))(company>=a))")
    assert attribute_names(f) == {"objectclass", "company", "sn"}
    assert attribute_names(parse_filter("(&)")) == set()


# --- evaluation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(sn=Clark)", True),
        ("(sn=Smith)", False),
        ("(SN=CLARK)", True),
        ("(Sn=clark)", True),
        ("(MAILNICKNAME=*)", True),
        ("(mailNickname=*)", True),
        ("(telephoneNumber=*)", False),
        ("(title=*)", False),
        ("(manager=*)", False),
        ("(objectClass=USER)", True),
        ("(objectClass=group)", False),
        ("(proxyAddresses=smtp:mark.clark@*)", True),
        ("(proxyAddresses=*@fabrikam.com)", False),
        ("(displayName=Mark*Clark)", True),
        ("(displayName=*M.*)", True),
        ("(displayName=Mark*Mark*)", False),
        ("(displayName=M*k*k)", True),
        ("(sn=Cl*ark)", True),
        ("(sn=Clar*lark)", False),
        ("(sn=*)", True),
        ("(employeeNumber>=100)", False),
        ("(employeeNumber<=100)", True),
        ("(employeeNumber>=99)", True),
        ("(employeeNumber<=99)", True),
        ("(employeeNumber>=+98)", True),
        ("(sn>=b)", True),
        ("(sn>=D)", False),
        ("(sn<=CLARK)", True),
        ("(sn<=ca)", False),
        ("(displayName~=markmclark)", True),
        ("(displayName~=Mark-M-Clark)", True),
        ("(displayName~=markclark)", False),
        ("(manager~=x)", False),
        ("(manager>=a)", False),
        ("(manager<=z)", False),
        ("(manager=*x*)", False),
        ("(!(manager=Bob))", True),
        ("(!(sn=Clark))", False),
        ("(!(title=*))", True),
        ("(&(objectClass=user)(company=Contoso))", True),
        ("(&(objectClass=user)(company=Fabrikam))", False),
        ("(|(company=Fabrikam)(department=sales))", True),
        ("(|(company=Fabrikam)(department=Marketing))", False),
        ("(&(mailNickname=*)(|(department=Sales)(department=Marketing))(!(title=Intern)))", True),
        ("(&(objectCategory=person)(objectClass=user))", False),
        ("(&)", True),
        ("(|)", False),
        ("(!(&))", False),
        ("(!(|))", True),
    ],
)
def test_matches_recipient(text: str, expected: bool) -> None:
    assert matches(text, MARK) is expected
    assert parse_filter(text).matches(MARK) is expected


def test_values_compare_with_casefold() -> None:
    assert matches("(l=STRASSE)", {"l": "Straße"})
    assert matches(r"(l=stra\c3\9fe)", {"L": "STRASSE"})
    assert matches("(cn=*ÄRGER*)", {"cn": "großer ärger hier"})


def test_multi_valued_attribute_matches_if_any_value_does() -> None:
    recipient = {"memberOf": ["CN=Staff", "CN=Sales Team", "CN=London"]}
    assert matches("(memberOf=cn=sales team)", recipient)
    assert matches("(memberOf=*lond*)", recipient)
    assert not matches("(memberOf=CN=Paris)", recipient)
    assert matches("(!(memberOf=CN=Paris))", recipient)
    assert matches("(memberOf>=cn=m)", recipient)


def test_empty_values_in_a_list_count_as_missing() -> None:
    assert not matches("(otherMailbox=*)", {"otherMailbox": ["", ""]})
    assert not matches("(otherMailbox=)", {"otherMailbox": [""]})
    assert matches("(otherMailbox=*)", {"otherMailbox": ["", "x"]})


def test_attribute_keys_in_different_case_are_merged() -> None:
    recipient = {"Mail": "a@x", "mail": ["b@y"]}
    assert matches("(MAIL=b@y)", recipient)
    assert matches("(mail=A@X)", recipient)


def test_numeric_comparison_only_when_both_sides_are_integers() -> None:
    assert matches("(n>=9)", {"n": "10"})  # numerically 10 >= 9; as text "10" < "9"
    assert not matches("(n>=9)", {"n": "10a"})  # not an integer: text order
    assert matches("(n<=-5)", {"n": "-12"})
    assert not matches("(n>=٣)", {"n": "5"})  # Arabic-Indic digit is not an integer here


def test_literal_special_characters_match_only_literally() -> None:
    recipient = {"cn": "Smith (Sales) *temp* C:\\x"}
    assert matches(r"(cn=Smith \28Sales\29 \2atemp\2a C:\5cx)", recipient)
    assert matches(r"(cn=*\2atemp\2a*)", recipient)
    assert not matches(r"(cn=Smith\2a)", recipient)
    assert not matches(r"(cn=\2a)", {"cn": "anything"})
    assert matches(r"(cn=\2a)", {"cn": "*"})


def test_matches_accepts_a_parsed_filter() -> None:
    f = parse_filter("(company=contoso)")
    assert matches(f, MARK)
    assert not matches(f, {})


def test_matches_with_text_raises_filter_error_when_malformed() -> None:
    with pytest.raises(FilterError):
        matches("(company=contoso", MARK)


# --- canonical text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("(sn=Smith)", "(sn=Smith)"),
        ("sn=Smith", "(sn=Smith)"),
        ("( & (a=1) (b=2) )", "(&(a=1)(b=2))"),
        (r"(cn=a\2Ab)", r"(cn=a\2ab)"),
        (r"(cn=\28\29\5c\00)", r"(cn=\28\29\5c\00)"),
        (r"(cn=\41BC)", "(cn=ABC)"),
        (r"(cn=*\2a*x\28*)", r"(cn=*\2a*x\28*)"),
        ("(cn=a**b)", "(cn=a*b)"),
        ("(cn=**)", "(cn=*)"),
        (r"(cn=tab\09)", r"(cn=tab\09)"),
        ("(mail;binary=x)", "(mail=x)"),
        ("(!(x~=y))", "(!(x~=y))"),
        ("(n>=1)", "(n>=1)"),
        ("(n<=1)", "(n<=1)"),
        ("(&)", "(&)"),
        ("(|)", "(|)"),
    ],
)
def test_str_gives_canonical_text(text: str, canonical: str) -> None:
    f = parse_filter(text)
    assert str(f) == canonical
    assert parse_filter(str(f)) == f


def test_str_escapes_values_built_in_code() -> None:
    f = And((Equality("cn", "a*(b)\\"), GreaterOrEqual("n", "*"), Approx("x", ")")))
    assert str(f) == r"(&(cn=a\2a\28b\29\5c)(n>=\2a)(x~=\29))"
    assert parse_filter(str(f)) == f


def test_substring_refuses_pieces_that_would_not_round_trip() -> None:
    with pytest.raises(ValueError):
        Substring("cn", "", ("",), "x")
    with pytest.raises(ValueError):
        Substring("cn", "", (), "")


# --- refused filters ----------------------------------------------------------------------


def test_unbalanced_parenthesis_message_names_position() -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter("(&(sn=Smith)")
    assert str(caught.value) == (
        "Filter (&(sn=Smith) is malformed at character 13: missing ')'. Check the parentheses."
    )
    assert caught.value.position == 13
    assert isinstance(caught.value, PostroomError)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_filter_is_refused(text: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert str(caught.value).startswith("The filter is empty.")
    assert caught.value.position == 1


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("(sn=Smith", 10, "missing ')'"),
        ("(&(sn=x)(cn=y)", 15, "missing ')'"),
        ("(", 2, "ends too early"),
        ("(sn=Smith))", 11, "after the end of the filter"),
        ("(a=1)(b=2)", 6, "(&...) or (|...)"),
        ("sn=Smith)", 9, "unexpected ')'"),
        ("(sn=Sm(ith)", 7, "unescaped '('"),
        ("sn=a(b", 5, "unescaped '('"),
        (r"(sn=\zz)", 5, "two hexadecimal digits"),
        (r"(sn=\2)", 5, "two hexadecimal digits"),
        (r"(sn=abc\)", 8, "two hexadecimal digits"),
        ("(sn=abc\\", 8, "two hexadecimal digits"),
        (r"(sn=a*b\g1*)", 8, "two hexadecimal digits"),
        (r"(sn=\c3)", 5, "not valid UTF-8"),
        (r"(sn=x*\c3*y)", 7, "not valid UTF-8"),
        ("(sn=a\x00b)", 6, "NUL"),
        ("(sn=a\ud800b)", 6, "not a valid character"),
        ("(cn:dn:=Smith)", 4, "extensible matching"),
        ("(:caseExactMatch:=x)", 2, "extensible matching"),
        ("(cn:=x)", 4, "not supported"),
        ("(age>=2*)", 8, "'*' is not allowed in a '>=' comparison"),
        ("(age<=*)", 7, "'<='"),
        ("(cn~=Sm*th)", 8, "'~='"),
        ("(=Smith)", 2, "missing attribute name"),
        ("(>=5)", 2, "missing attribute name"),
        ("(s n=x)", 3, "after the attribute name s"),
        ("(sn)", 4, "expected '=', '~=', '>=' or '<='"),
        ("(sn<x)", 4, "expected '='"),
        ("(sn!=x)", 4, "expected '='"),
        ("(sn_x=1)", 4, "expected '='"),
        ("(-sn=x)", 2, "attribute name"),
        ("(ßn=x)", 2, "attribute name"),
        ("()", 2, "found ')'"),
        ("((sn=x))", 2, "found '('"),
        ("(1.=x)", 4, "OID"),
        ("(1.2a=x)", 5, "expected '='"),
        ("(mail;=x)", 7, "empty attribute option"),
        ("(!)", 3, "'!' must be followed"),
        ("(!sn=x)", 3, "'!' must be followed"),
        ("(!(a=1)(b=2))", 8, "exactly one filter"),
        ("(&(a=1)x)", 8, "expected ')' but found 'x'"),
        ("(& (a=1) x=2)", 10, "expected ')'"),
        ("(sn=x) junk", 8, "after the end"),
    ],
)
def test_malformed_filter_is_refused_with_position(text: str, position: int, fragment: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    message = str(caught.value)
    assert caught.value.position == position
    assert f"is malformed at character {position}:" in message
    assert fragment in message


def test_deep_nesting_is_refused_not_crashing() -> None:
    for text in ["(&" * 10_000, "(!" * 10_000 + "(a=1)", "(|" * 65 + ")" * 65]:
        with pytest.raises(FilterError) as caught:
            parse_filter(text)
        assert "nested too deeply" in str(caught.value)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    f = parse_filter("(!" * 63 + "(a=1)" + ")" * 63)
    assert f.matches({"a": "1"}) is False  # 63 negations
    assert str(f).count("!") == 63


# --- properties ---------------------------------------------------------------------------


def _check_parse(text: str) -> None:
    try:
        f = parse_filter(text)
    except FilterError as error:
        assert 1 <= error.position <= len(text) + 1
        assert f"character {error.position}" in str(error) or error.position == 1
        return
    assert parse_filter(str(f)) == f
    assert str(parse_filter(str(f))) == str(f)


@given(st.text())
def test_arbitrary_text_raises_only_filter_error(text: str) -> None:
    _check_parse(text)


@given(st.text(alphabet="()&|!=*~<>:;.-\\ \t\x00\ud800abAZ019fäß", max_size=40))
def test_filter_like_text_raises_only_filter_error(text: str) -> None:
    _check_parse(text)


_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,8}|[0-9]{1,3}(\.[0-9]{1,3}){0,3}", fullmatch=True)
_values = st.text()
_nonempty = st.text(min_size=1)


def _comparisons() -> st.SearchStrategy[LdapFilter]:
    return st.one_of(
        st.builds(Equality, _names, _values),
        st.builds(Presence, _names),
        st.builds(GreaterOrEqual, _names, _values),
        st.builds(LessOrEqual, _names, _values),
        st.builds(Approx, _names, _values),
        st.tuples(_names, _values, st.lists(_nonempty, max_size=3).map(tuple), _values)
        .filter(lambda t: bool(t[1] or t[2] or t[3]))
        .map(lambda t: Substring(*t)),
    )


_filters = st.recursive(
    _comparisons(),
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda fs: And(tuple(fs))),
        st.lists(children, max_size=3).map(lambda fs: Or(tuple(fs))),
        children.map(Not),
    ),
    max_leaves=8,
)


@given(_filters)
def test_str_of_any_filter_parses_back_to_it(f: LdapFilter) -> None:
    assert parse_filter(str(f)) == f


@given(_filters, st.dictionaries(_names, st.one_of(st.none(), _values, st.lists(_values))))
def test_not_inverts_and_str_preserves_meaning(
    f: LdapFilter, attributes: dict[str, str | list[str] | None]
) -> None:
    assert Not(f).matches(attributes) is (not f.matches(attributes))
    assert parse_filter(str(f)).matches(attributes) is f.matches(attributes)


@given(_names, _nonempty)
def test_equality_and_presence_match_the_value_itself(name: str, value: str) -> None:
    shouted = value.upper()
    recipient = {name.upper(): [shouted]}
    assert Equality(name, value).matches(recipient) is (shouted.casefold() == value.casefold())
    assert Equality(name, value).matches({name: value})
    assert Presence(name.lower()).matches({name: value})
    assert parse_filter(str(Equality(name, value))).matches({name.swapcase(): value})
