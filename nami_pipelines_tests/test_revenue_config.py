"""The `revenue:` block: every bad currency, rate, rates file or fee fails at load with one line
naming the integration and the field; a relative rates file is found next to the integrations
file; `check` prints the same lines."""

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from nami_pipelines.cli import main
from nami_pipelines.config import IntegrationConfigError, load_integrations, parse_integrations
from nami_pipelines_tests.test_config import FEED, PROJECT

ROOT = Path(__file__).resolve().parents[1]
HEADER = "date,currency,rate\n"


def problems(tmp_path: Path, revenue: dict, rates: str | None = None, entry=PROJECT) -> str:
    if rates is not None:
        (tmp_path / "rates.csv").write_text(rates)
    with pytest.raises(IntegrationConfigError) as raised:
        parse_integrations(
            {"integrations": [{**entry, "revenue": revenue}]}, check_env=False, base_dir=tmp_path
        )
    return str(raised.value)


def with_file(**options) -> dict:
    return {"currency": "USD", "rates_file": "rates.csv", **options}


@pytest.mark.parametrize("currency", ["USDD", "usd", "XYZ", ""])
def test_an_unknown_target_currency_is_refused(tmp_path, currency):
    message = problems(tmp_path, with_file(currency=currency), HEADER)
    assert message == (
        f"integration 'amplitude_prod': field 'revenue.currency': unknown currency code "
        f"{currency!r}: an ISO 4217 code such as USD"
    )


@pytest.mark.parametrize(
    ("rates", "expected"),
    [
        (HEADER + "2026-11-29,EUX,1.08\n", "line 2: unknown currency code 'EUX'"),
        (HEADER + "2026-11-29,EUR,1.08\n2026-11-29,GBP,-1.27\n", "line 3: rate -1.27 is not a"),
        (HEADER + "2026-11-29,EUR,0\n", "line 2: rate 0 is not a positive number"),
        (HEADER + "2026-11-29,EUR,\n", "line 2: no rate"),
        (HEADER + "2026-11-29,EUR,1,08\n", "line 2: expected 3 values (date,currency,rate)"),
        (HEADER + "2026-11-29,EUR\n", "line 2: expected 3 values"),
        (HEADER + "29/11/2026,EUR,1.08\n", "line 2: date '29/11/2026' is not a day as"),
        (HEADER + "2026-11-31,EUR,1.08\n", "line 2: date '2026-11-31' is not a day"),
        (HEADER + "2026-11-29,EUR,one\n", "line 2: rate 'one' is not a number"),
        (HEADER + "2026-11-29,EUR,NaN\n", "line 2: rate NaN is not a positive number"),
        (HEADER + "2026-11-29,EUR,1.08\n2026-11-29,EUR,1.09\n", "line 3: a second EUR rate"),
        (HEADER + "2026-11-29,USD,0.98\n", "line 2: the rate of USD itself can only be 1"),
        ("day,code,value\n2026-11-29,EUR,1.08\n", "the first line must be the header"),
        ("", "the first line must be the header date,currency,rate"),
    ],
)
def test_a_bad_rates_file_is_refused_naming_the_line(tmp_path, rates, expected):
    message = problems(tmp_path, with_file(), rates)
    assert message.startswith("integration 'amplitude_prod': field 'revenue.rates_file': ")
    assert expected in message
    assert str(tmp_path / "rates.csv") in message


def test_a_missing_rates_file_is_refused(tmp_path):
    message = problems(tmp_path, with_file(rates_file="nowhere/rates.csv"))
    assert message.startswith(
        f"integration 'amplitude_prod': field 'revenue.rates_file': cannot read "
        f"{tmp_path / 'nowhere' / 'rates.csv'}"
    )


@pytest.mark.parametrize("fee", [1, 1.5, -0.1])
def test_a_fee_outside_zero_to_one_is_refused(tmp_path, fee):
    revenue = with_file(mode="proceeds", store_fees={"apple": 0.15, "google": fee})
    message = problems(tmp_path, revenue, HEADER)
    assert message.startswith("integration 'amplitude_prod': field 'revenue.store_fees")
    assert f"the google fee is {fee}: a share of the price, at least 0 and below 1" in message


@pytest.mark.parametrize(
    ("revenue", "field", "expected"),
    [
        (with_file(mode="proceeds"), "revenue.store_fees", "proceeds mode needs the store fees"),
        (with_file(mode="net"), "revenue.mode", "Input should be 'gross' or 'proceeds'"),
        (with_file(store_fees={"ios": 0.15}), "revenue.store_fees.ios.[key]", "Input should be"),
        ({"currency": "USD"}, "revenue", "give rates_file (a CSV) or rates_table"),
        (with_file(rates_table="fx"), "revenue", "exactly one"),
        ({"currency": "USD", "rates_table": "fx; drop table x"}, "revenue.rates_table", "not a"),
        ({"rates_file": "rates.csv"}, "revenue.currency", "Field required"),
        (with_file(convert=True), "revenue.convert", "Extra inputs are not permitted"),
    ],
)
def test_every_other_mistake_names_its_field(tmp_path, revenue, field, expected):
    message = problems(tmp_path, revenue, HEADER)
    assert message.startswith(f"integration 'amplitude_prod': field '{field}': ")
    assert expected in message


def test_mparticle_asks_for_conversion_and_amplitude_always_converts(tmp_path):
    (tmp_path / "rates.csv").write_text(HEADER)
    feed, converting, project = parse_integrations(
        {
            "integrations": [
                {**FEED, "revenue": with_file()},
                {**FEED, "name": "ios_usd", "revenue": with_file(convert=True)},
                {**PROJECT, "revenue": with_file()},
            ]
        },
        check_env=False,
        base_dir=tmp_path,
    )
    assert (feed.revenue.converts, converting.revenue.converts, project.revenue.converts) == (
        False,
        True,
        True,
    )
    assert project.revenue.rates_file == tmp_path / "rates.csv"
    assert project.revenue.mode == "gross" and project.revenue.store_fees == {}


def test_a_relative_rates_file_is_found_next_to_the_integrations_file(tmp_path, monkeypatch):
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "rates.csv").write_text(HEADER + "2026-11-29,EUR,1.08\n")
    path = folder / "integrations.yaml"
    path.write_text(yaml.safe_dump({"integrations": [{**PROJECT, "revenue": with_file()}]}))
    monkeypatch.chdir(tmp_path)
    (project,) = load_integrations(path, check_env=False)
    assert project.revenue.rates_file == folder / "rates.csv"


def test_the_example_file_converts_with_its_example_rates():
    by_name = {
        integration.name: integration
        for integration in load_integrations(ROOT / "integrations.example.yaml", check_env=False)
    }
    revenue = by_name["amplitude_production"].revenue
    assert (revenue.currency, revenue.mode, revenue.store_fees["apple"]) == (
        "USD",
        "proceeds",
        Decimal("0.15"),
    )
    assert revenue.rates_file == ROOT / "exchange_rates.example.csv"


def test_check_prints_each_revenue_problem_and_exits_2(tmp_path, capsys):
    (tmp_path / "rates.csv").write_text(HEADER + "2026-11-29,EUR,-1.08\n")
    path = tmp_path / "integrations.yaml"
    entries = [
        {**PROJECT, "revenue": with_file()},
        {**FEED, "revenue": with_file(currency="EURO", convert=True)},
    ]
    path.write_text(yaml.safe_dump({"integrations": entries}))
    assert main(["check", "--file", str(path)]) == 2
    lines = [line for line in capsys.readouterr().out.splitlines() if "revenue" in line]
    assert lines == [
        "configuration: integration 'amplitude_prod': field 'revenue.rates_file': "
        f"{tmp_path / 'rates.csv'} line 2: rate -1.08 is not a positive number",
        "configuration: integration 'ios_feed': field 'revenue.currency': unknown currency "
        "code 'EURO': an ISO 4217 code such as USD",
    ]
