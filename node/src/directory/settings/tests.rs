//! Config tests for the directory and user map sections.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sections {
    #[serde(default)]
    directory: Vec<DirectorySection>,
    #[serde(default)]
    user_map: Vec<UserMapSection>,
}

fn check(text: &str) -> Vec<(usize, String, String)> {
    let s: Sections = toml::from_str(text).expect("parses");
    let line = |span: &Option<Range<usize>>| span.as_ref().map_or(0, |r| text[..r.start].matches('\n').count() + 1);
    validate(&s.directory, &s.user_map).into_iter().map(|e| (line(&e.span), e.key, e.message)).collect()
}

const GOOD: &str = r#"
[[directory]]
name = "corp"
server_type = "openldap"
urls = ["ldap://ldap1:389", "ldaps://[::1]", "ldap://ldap2/"]
bind_dn = "cn=admin,dc=example,dc=com"
bind_password = "secret"
account_base_dn = "ou=people,dc=example,dc=com"

[[user_map]]
name = "users"
kind = "ldap-bind"
directory = "corp"
search_pattern = "(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%e)))"
[user_map.cache]
stale_on_failure_secs = 120

[[user_map]]
name = "file"
kind = "local-file"
path = "users.map"
"#;

#[test]
fn a_complete_config_is_valid_and_defaults_apply() {
    assert_eq!(check(GOOD), []);
    let s: Sections = toml::from_str(GOOD).unwrap();
    let d = DirectorySettings::load(&s.directory[0], Path::new("conf")).unwrap();
    assert!(!d.tls.starttls && d.tls.ca.is_none(), "system trust store unless a CA file is named");
    assert_eq!(d.timeout, Duration::from_secs(DEFAULT_TIMEOUT_SECS));
    assert_eq!(d.pool_size, DEFAULT_POOL_SIZE);
    assert_eq!(d.group_base_dn, "ou=people,dc=example,dc=com");
    assert_eq!(d.retry_dead_after, Duration::from_secs(DEFAULT_RETRY_DEAD_AFTER_SECS));
    let cache = s.user_map[0].cache;
    assert_eq!((cache.positive_ttl_secs, cache.negative_ttl_secs, cache.stale_on_failure_secs), (60, 10, 120));
    assert!(!format!("{:?}{d:?}", s.directory[0]).contains("secret"), "passwords never reach Debug output");
}

#[test]
fn every_problem_is_reported_with_its_line_and_key() {
    let text = r#"
[[directory]]
name = "corp"
server_type = "active-directory"
urls = ["ldap://ok", "http://wrong", "ldap://host:99999"]
bind_dn = "not a dn"
timeout_secs = 0
account_base_dn = "(uid=x)"

[[directory]]
name = "corp"
server_type = "openldap"
urls = []
account_base_dn = "dc=x"
pool_size = 0

[[user_map]]
name = "a"
kind = "ldap-password"
directory = "nowhere"
search_pattern = "(uid=alice)"
default_port = 0

[[user_map]]
name = "b"
kind = "ldap-bind"
host_attribute = "bad attr"

[[user_map]]
name = "c"
kind = "local-file"
search_pattern = "(uid=%u)"
"#;
    let errors = check(text);
    let expected = [
        (5, "directory[0].urls[1]", "\"http://wrong\" is not an ldap:// or ldaps:// URL"),
        (5, "directory[0].urls[2]", "\"ldap://host:99999\": bad port"),
        (6, "directory[0].bind_dn", "\"not a dn\" is not a DN"),
        (7, "directory[0].timeout_secs", "must be between 1 and 300"),
        (8, "directory[0].account_base_dn", "\"(uid=x)\" is not a DN"),
        (11, "directory[1].name", "directory \"corp\" is defined twice"),
        (13, "directory[1].urls", "needs at least one server URL"),
        (15, "directory[1].pool_size", "must be between 1 and 256"),
        (20, "user_map[0].directory", "no [[directory]] named \"nowhere\""),
        (21, "user_map[0].search_pattern", "the pattern never uses the login: add %u or %e"),
        (22, "user_map[0].default_port", "must be between 1 and 65535"),
        (26, "user_map[1].directory", "an LDAP map needs a directory"),
        (27, "user_map[1].host_attribute", "\"bad attr\" is not an attribute name"),
        (32, "user_map[2].search_pattern", "search_pattern does not apply to a local-file map"),
        (31, "user_map[2].path", "a local-file map needs a path"),
    ];
    let got: Vec<(usize, &str, &str)> = errors.iter().map(|(l, k, m)| (*l, k.as_str(), m.as_str())).collect();
    assert_eq!(got, expected);
}

#[test]
fn unknown_keys_and_kinds_are_refused_by_serde() {
    let unknown = "[[directory]]\nname = \"x\"\nserver_type = \"openldap\"\nurls = [\"ldap://h\"]\naccount_base_dn = \"dc=x\"\nbogus = 1\n";
    assert!(toml::from_str::<Sections>(unknown).is_err());
    assert!(toml::from_str::<Sections>("[[user_map]]\nname = \"m\"\nkind = \"ldap\"\n").is_err());
    assert!(
        toml::from_str::<Sections>(
            "[[directory]]\nname = \"x\"\nserver_type = \"novell\"\nurls = []\naccount_base_dn = \"dc=x\"\n"
        )
        .is_err()
    );
}

#[test]
fn ldap_urls_parse() {
    let url = LdapUrl::parse("ldaps://ldap.example.com").unwrap();
    assert_eq!((url.tls, url.host.as_str(), url.port), (true, "ldap.example.com", 636));
    assert_eq!(LdapUrl::parse("ldap://[::1]:1389/").unwrap().authority(), "[::1]:1389");
    assert_eq!(LdapUrl::parse("ldap://10.0.0.1").unwrap().to_string(), "ldap://10.0.0.1:389");
    for bad in ["ldap://", "ldap://h:0", "ldap://h/dc=x", "ldapi:///tmp/s", "ldap://[::1"] {
        assert!(LdapUrl::parse(bad).is_err(), "{bad}");
    }
}

fn directory_with(extra: &str) -> String {
    format!("[[directory]]\nname = \"corp\"\nserver_type = \"openldap\"\naccount_base_dn = \"dc=x\"\n{extra}")
}

/// `resolve` on `text` with `config_dir`: errors as (line, key, message),
/// `config_dir` shown as DIR.
fn resolved(text: &str, config_dir: &Path) -> Result<Vec<DirectorySettings>, Vec<(usize, String, String)>> {
    let s: Sections = toml::from_str(text).expect("parses");
    let line = |span: &Option<Range<usize>>| span.as_ref().map_or(0, |r| text[..r.start].matches('\n').count() + 1);
    let shown = config_dir.display().to_string();
    resolve(&s.directory, config_dir).map_err(|errors| {
        errors.into_iter().map(|e| (line(&e.span), e.key, e.message.replace(&shown, "DIR"))).collect()
    })
}

#[test]
fn a_ca_file_is_read_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tls")).unwrap();
    let ca = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/tls/test-ca.pem")).unwrap();
    std::fs::write(dir.path().join("tls/ca.pem"), ca).unwrap();
    let text = directory_with("urls = [\"ldap://ldap1\"]\nstarttls = true\ntls_ca_file = \"tls/ca.pem\"\n");
    assert_eq!(check(&text), []);
    let d = resolved(&text, dir.path()).unwrap().remove(0);
    assert!(d.tls.starttls);
    let ca = d.tls.ca.expect("CA loaded");
    assert_eq!((ca.path, ca.roots.len()), (dir.path().join("tls/ca.pem"), 1));
}

#[test]
fn an_unusable_ca_file_is_an_error_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let text = directory_with("urls = [\"ldaps://ldap1\"]\ntls_ca_file = \"missing.pem\"\n")
        + &directory_with("urls = [\"ldaps://ldap2\"]\ntls_ca_file = \"empty.pem\"\n").replace("corp", "corp2");
    let errors = resolved(&text, dir.path()).unwrap_err();
    let expected = [
        (6, "directory[0].tls_ca_file", "cannot read CA file DIR/missing.pem: No such file or directory (os error 2)"),
        (
            12,
            "directory[1].tls_ca_file",
            "no certificate in DIR/empty.pem (expected PEM \"-----BEGIN CERTIFICATE-----\" blocks)",
        ),
    ];
    let got: Vec<(usize, &str, &str)> = errors.iter().map(|(l, k, m)| (*l, k.as_str(), m.as_str())).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_ca_file_needs_a_server_that_uses_tls() {
    let text = directory_with("urls = [\"ldap://ldap1\"]\ntls_ca_file = \"ca.pem\"\n");
    let message = "no server uses TLS: tls_ca_file needs an ldaps:// URL or starttls = true";
    assert_eq!(check(&text), [(6, "directory[0].tls_ca_file".to_string(), message.to_string())]);
    let starttls = directory_with("urls = [\"ldaps://ldap1\"]\nstarttls = true\n");
    let message = "ldaps://ldap1 is already TLS; StartTLS applies to ldap:// URLs";
    assert_eq!(check(&starttls), [(6, "directory[0].starttls".to_string(), message.to_string())]);
}
