use std::fmt;
use std::path::PathBuf;

/// Where a setting's value came from, so an error can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Env(String),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Default => f.write_str("built-in defaults"),
        }
    }
}

/// Everything that can be wrong with loopsmith's configuration. Each message names the key,
/// where its value came from, and what would be accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {} is not valid TOML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("unknown section `[{section}]` in {origin}; sections are: {allowed}")]
    UnknownSection {
        origin: Origin,
        section: String,
        allowed: String,
    },
    #[error("unknown key `{key}` in {origin}; keys of [{section}] are: {allowed}")]
    UnknownKey {
        origin: Origin,
        section: String,
        key: String,
        allowed: String,
    },
    #[error(
        "`{key}` in {origin} looks like a secret; secrets are read only from the environment or \
         the secrets file (engine.secrets_file): set {env} there"
    )]
    SecretInConfig {
        origin: Origin,
        key: String,
        env: &'static str,
    },
    #[error("bad value for `{key}` in {origin}: {problem}; allowed: {allowed}")]
    BadValue {
        origin: Origin,
        key: String,
        problem: String,
        allowed: String,
    },
    #[error(
        "environment variable {var} does not name a setting; settings use \
         LOOPSMITH_<SECTION>__<KEY>, e.g. LOOPSMITH_TELEGRAM__API_URL"
    )]
    BadEnvName { var: String },
    #[error("cannot read secrets file {}", path.display())]
    ReadSecrets {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secrets file {}, line {line}: {problem}", path.display())]
    BadSecretsLine {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}
