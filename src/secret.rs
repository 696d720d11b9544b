//! Secrets from the config file: never printed, and read from their file at each use so a
//! rotated credential takes effect without a restart.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("secret file {path} is empty")]
    Empty { path: PathBuf },
}

/// A secret value. `Debug` and `Display` print `<secret>`, so a secret cannot leak through
/// a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that must send it upstream.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// Where a secret comes from: the config itself (after `${ENV}` expansion) or a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    Inline(Secret),
    File(PathBuf),
}

impl SecretSource {
    /// The current value. A file is read at every call; one trailing newline (as left by
    /// `echo` or an editor) is not part of the secret.
    pub fn read(&self) -> Result<Secret, SecretError> {
        match self {
            SecretSource::Inline(secret) => Ok(secret.clone()),
            SecretSource::File(path) => {
                let raw = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
                    path: path.clone(),
                    error: source,
                })?;
                let value = raw.strip_suffix('\n').unwrap_or(&raw);
                let value = value.strip_suffix('\r').unwrap_or(value);
                if value.is_empty() {
                    return Err(SecretError::Empty { path: path.clone() });
                }
                Ok(Secret(value.to_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret}"), "<secret>");
        assert_eq!(format!("{secret:?}"), "<secret>");
        assert_eq!(
            format!("{:?}", SecretSource::Inline(secret)),
            "Inline(<secret>)"
        );
    }

    #[test]
    fn file_secret_is_read_at_each_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "first-key-value\n").unwrap();
        let source = SecretSource::File(path.clone());
        assert_eq!(source.read().unwrap().expose(), "first-key-value");
        std::fs::write(&path, "rotated-key-value").unwrap();
        assert_eq!(source.read().unwrap().expose(), "rotated-key-value");
    }

    #[test]
    fn missing_or_empty_file_is_an_error_without_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        let err = SecretSource::File(path.clone()).read().unwrap_err();
        assert!(err
            .to_string()
            .starts_with(&format!("cannot read secret file {}", path.display())));
        std::fs::write(&path, "\n").unwrap();
        let err = SecretSource::File(path.clone()).read().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("secret file {} is empty", path.display())
        );
    }
}
