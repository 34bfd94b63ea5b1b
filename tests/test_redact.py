"""``crmkit.core.redact``: configuration shown without its secrets."""

from crmkit.core.redact import HIDDEN, is_secret_name, redact_options, redact_url


def test_urls_lose_their_passwords_and_secret_query_values_only():
    assert (
        redact_url("https://shop:pa55@sms.example.vn/send?api_key=K1&sender=SAOMAI")
        == f"https://shop:{HIDDEN}@sms.example.vn/send?api_key={HIDDEN}&sender=SAOMAI"
    )
    assert redact_url("http://127.0.0.1:8025/t?u=https%3A%2F%2Fx") == "http://127.0.0.1:8025/t?u=https%3A%2F%2Fx"
    assert redact_url("https://user@host/") == "https://user@host/"  # no password, nothing hidden
    assert redact_url("http://[bad") == "http://[bad"  # not a URL: left as it is


def test_options_hide_secret_names_but_keep_the_names_of_environment_variables():
    shown = redact_options(
        {
            "url": "https://u:p@h/x?token=t",
            "headers": {"Authorization": "Bearer b", "X-Shop": "1"},
            "password_env": "SMTP_PASSWORD",
            "token_env": "SMS_TOKEN",
            "password": "",
            "port": 587,
        }
    )
    assert shown == {
        "url": f"https://u:{HIDDEN}@h/x?token={HIDDEN}",
        "headers": {"Authorization": HIDDEN, "X-Shop": "1"},
        "password_env": "SMTP_PASSWORD",
        "token_env": "SMS_TOKEN",
        "password": "",
        "port": 587,
    }
    assert is_secret_name("X-Api-Key") and is_secret_name("client_secret") and not is_secret_name("address_kind")
