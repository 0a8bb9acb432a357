use super::*;

const GOOD: &str = r#"
[node]
name = "node-a"
data_dir = "var/node-a"

[limits]
max_message_size = 1048576

[[domain]]
name = "Example.COM"

[[account]]
address = "Alice@example.com"
password = "{SSHA256}Vkh0S8mgdWt7Iwe1S8ViKysn5cTFtddmuXEPlMbhlH4yMzQ1Njc4OWFiY2RlZg=="

[backend.smtp]
listen = "127.0.0.1:2525"

[backend.pop3]
listen = "127.0.0.1:1100"
"#;

fn errors(text: &str) -> String {
    match Config::parse(Path::new("conf/node.toml"), text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_good_file_is_normalised() {
    let config = Config::parse(Path::new("conf/node.toml"), GOOD).unwrap();
    assert_eq!(config.node_name, "node-a");
    assert_eq!(config.data_dir, Path::new("conf/var/node-a"));
    assert_eq!(config.domains, ["example.com"]);
    let alice = parse_address("alice@example.com").unwrap();
    assert!(config.accounts.contains_key(&alice));
    assert_eq!(config.limits.max_message_size, 1_048_576);
    assert_eq!(config.limits.max_recipients, DEFAULT_MAX_RECIPIENTS);
    assert_eq!(config.smtp, Some("127.0.0.1:2525".parse().unwrap()));
}

#[test]
fn syntax_error_names_the_line() {
    insta::assert_snapshot!(errors("[node]\nname = \"a\"\ndata_dir = \n"));
}

#[test]
fn unknown_key_names_line_and_key() {
    let text = GOOD.replace("[backend.pop3]\n", "[backend.pop3]\nlisten_on = \"x\"\n");
    insta::assert_snapshot!(errors(&text));
}

#[test]
fn wrong_type_names_line_and_key() {
    let text = GOOD.replace("max_message_size = 1048576", "max_message_size = \"big\"");
    insta::assert_snapshot!(errors(&text));
}

#[test]
fn every_semantic_error_is_reported_at_once() {
    let text = GOOD
        .replace("name = \"node-a\"", "name = \"node a\"")
        .replace("Alice@example.com", "alice@other.org")
        .replace("127.0.0.1:1100", "localhost:110")
        .replace("max_message_size = 1048576", "max_line_length = 10")
        + "\n[[domain]]\nname = \"example.com\"\n\n[[account]]\naddress = \"bob@example.com\"\npassword = \"{NOPE}xyz\"\n\n[backend.imap]\nlisten = \"127.0.0.1:2525\"\n";
    insta::assert_snapshot!(errors(&text));
}

#[test]
fn a_node_without_services_is_an_error() {
    let text = "[node]\nname = \"a\"\ndata_dir = \"d\"\n";
    insta::assert_snapshot!(errors(text));
}

#[test]
fn same_listen_address_twice_is_an_error() {
    let text = GOOD.replace("127.0.0.1:1100", "127.0.0.1:2525");
    insta::assert_snapshot!(errors(&text));
}

#[test]
fn missing_file_is_reported() {
    let err = Config::load(Path::new("/nonexistent/tiermail.toml")).unwrap_err();
    assert!(err.to_string().starts_with("/nonexistent/tiermail.toml: cannot read the file"), "{err}");
}

#[test]
fn addresses_are_normalised_and_checked() {
    let id = parse_address("  Bob.Smith+tag@Example.Com ").unwrap();
    assert_eq!((id.user.as_str(), id.domain.as_str()), ("bob.smith+tag", "example.com"));
    for bad in
        ["", "bob", "@example.com", "../x@example.com", "a/b@example.com", "bob@", "bob@exa mple.com", ".x@example.com"]
    {
        assert!(parse_address(bad).is_none(), "{bad:?}");
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = Config::parse(Path::new("x.toml"), &text);
    }
}

#[test]
fn proxy_sections_are_checked() {
    let text = GOOD.to_string()
        + r#"
[[user_map]]
name = "cluster"
kind = "local-file"
path = "users.map"

[[user_map]]
name = "ldap"
kind = "ldap-password"

[proxy.imap]
listen = "127.0.0.1:1143"
user_map = "cluster"
auth = "proxy"
failover = "nowhere"

[proxy.smtp]
listen = "127.0.0.1:2525"
user_map = "missing"
failover = "127.0.0.1:25"
"#;
    insta::assert_snapshot!(errors(&text));
}

#[test]
fn a_good_proxy_section_resolves_paths_and_defaults() {
    let text = GOOD.to_string()
        + "\n[[user_map]]\nname = \"m\"\nkind = \"local-file\"\npath = \"maps/users.map\"\n\n[proxy.pop3]\nlisten = \"127.0.0.1:1110\"\nuser_map = \"m\"\nfailover = \"10.0.0.9:110\"\n";
    let config = Config::parse(Path::new("conf/node.toml"), &text).unwrap();
    assert_eq!(config.user_maps[0].name.get_ref(), "m");
    assert_eq!(config.config_dir, Path::new("conf"));
    let pop3 = config.proxies.pop3.unwrap();
    assert_eq!((pop3.backend_port, pop3.failover.as_deref()), (110, Some("10.0.0.9:110")));
    assert_eq!(pop3.connect_timeout, Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_SECS));
    assert_eq!(pop3.login_timeout, None, "derived from the directories when the node starts");
}

#[test]
fn the_default_login_wait_covers_the_back_ends_directory_budget() {
    use crate::directory::settings::{DirectorySettings, ServerType};
    use proxies::default_login_timeout;
    let floor = Duration::from_secs(proxies::DEFAULT_LOGIN_TIMEOUT_SECS);
    assert_eq!(default_login_timeout(&[]), floor.max(crate::directory::AUTH_FAILURE_DELAY));
    let mut slow = DirectorySettings::new("d", ServerType::OpenLdap, &["ldap://a", "ldap://b", "ldap://c"], "dc=x");
    slow.timeout = Duration::from_secs(10);
    // Search and bind, each through 3 URLs plus the pool wait, then the
    // failed-login delay: 2 x 10 s x 4 + 1 s.
    assert_eq!(default_login_timeout(&[slow]), Duration::from_secs(81));
}
