//! Config errors: each problem located by line and key, all of them reported together.
//!
//! This module only holds and formats errors; finding them is [`crate::validate`]'s job.
//! Messages never contain key material.

use std::fmt;

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// 1-based line in the config file, where known.
    pub line: Option<usize>,
    /// The key the problem is about, e.g. `interface "peer-a".listen_port`,
    /// `interface[1].name`, `router.asn`; empty for TOML syntax errors.
    pub key: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// `KEY: MESSAGE` (or `MESSAGE` without a key).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// All problems found in one config file (validation does not stop at the first),
/// sorted by line; problems without a line come first.
///
/// `Display` prints one line per problem: `FILE:LINE: KEY: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// The file name as given (for messages).
    pub file: String,
    /// Never empty when returned by `Config::load` / `Config::parse`.
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// A single error without a line (e.g. the file cannot be read).
    pub fn single(
        file: impl Into<String>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigErrors {
            file: file.into(),
            errors: vec![ConfigError {
                line: None,
                key: key.into(),
                message: message.into(),
            }],
        }
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// True if there are no problems (never for a returned error).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Sorts by line (stable: problems on one line keep the order they were found in).
    pub(crate) fn sort(&mut self) {
        self.errors.sort_by_key(|e| e.line);
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&self.file)?;
            if let Some(line) = e.line {
                write!(f, ":{line}")?;
            }
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        let errs = ConfigErrors {
            file: "r.toml".into(),
            errors: vec![
                ConfigError {
                    line: None,
                    key: "router".into(),
                    message: "missing [router] table".into(),
                },
                ConfigError {
                    line: Some(3),
                    key: "router.asn".into(),
                    message: "bad".into(),
                },
                ConfigError {
                    line: Some(7),
                    key: String::new(),
                    message: "syntax".into(),
                },
            ],
        };
        assert_eq!(
            errs.to_string(),
            "r.toml: router: missing [router] table\nr.toml:3: router.asn: bad\nr.toml:7: syntax"
        );
    }
}
