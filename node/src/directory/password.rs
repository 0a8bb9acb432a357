//! Placeholder until the full scheme module lands (being written now).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("unknown password scheme {scheme}")]
    UnknownScheme { scheme: String },
}
pub fn verify(stored: &str, password: &str) -> Result<bool, PasswordError> {
    if stored.starts_with('{') || stored.starts_with('$') {
        return Err(PasswordError::UnknownScheme { scheme: stored.chars().take(8).collect() });
    }
    Ok(subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), password.as_bytes()).into())
}
