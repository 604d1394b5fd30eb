//! `.loopsmith/onnxruntime/MANIFEST`: records which wheel the library came from, so a
//! second `setup` can tell "already done" from "a different version or variant is wanted".

use anyhow::{Context, Result, bail};

use super::Variant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub package: String,
    pub version: String,
    pub variant: Variant,
    pub library: String,
}

impl Manifest {
    pub fn new(variant: Variant, version: &str) -> Self {
        Self {
            package: variant.package().to_owned(),
            version: version.to_owned(),
            variant,
            library: format!("libonnxruntime.so.{version}"),
        }
    }

    /// `key=value` lines; blank lines, `#` comments and unknown keys are ignored.
    pub fn parse(text: &str) -> Result<Self> {
        let (mut package, mut version, mut variant, mut library) = (None, None, None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .with_context(|| format!("MANIFEST line `{line}` is not key=value"))?;
            let value = value.trim().to_owned();
            match key.trim() {
                "package" => package = Some(value),
                "version" => version = Some(value),
                "variant" => variant = Some(Variant::from_name(&value)?),
                "library" => library = Some(value),
                _ => {}
            }
        }
        Ok(Self {
            package: package.context("MANIFEST has no `package=`")?,
            version: version.context("MANIFEST has no `version=`")?,
            variant: variant.context("MANIFEST has no `variant=`")?,
            library: library.context("MANIFEST has no `library=`")?,
        })
    }

    pub fn render(&self) -> String {
        format!(
            "package={}\nversion={}\nvariant={}\nlibrary={}\n",
            self.package,
            self.version,
            self.variant.name(),
            self.library
        )
    }

    /// Same wheel (package and version), which is what decides whether to download again.
    pub fn same_wheel(&self, other: &Self) -> bool {
        self.package == other.package && self.version == other.version
    }
}

impl Variant {
    fn from_name(name: &str) -> Result<Self> {
        match name {
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            other => bail!("unknown variant `{other}` (expected cpu or gpu)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse_round_trips() {
        for variant in [Variant::Cpu, Variant::Gpu] {
            let manifest = Manifest::new(variant, "1.31.1");
            assert_eq!(Manifest::parse(&manifest.render()).ok(), Some(manifest));
        }
    }

    #[test]
    fn renders_the_documented_lines() {
        assert_eq!(
            Manifest::new(Variant::Gpu, "1.31.1").render(),
            "package=onnxruntime-gpu\nversion=1.31.1\nvariant=gpu\nlibrary=libonnxruntime.so.1.31.1\n"
        );
    }

    #[test]
    fn parse_tolerates_spacing_comments_and_unknown_keys() {
        let text = "# written by xtask\n\n package = onnxruntime \nversion=1.31.1\nvariant=cpu\n\
                    library=libonnxruntime.so.1.31.1\nfuture=thing\n";
        assert_eq!(
            Manifest::parse(text).ok(),
            Some(Manifest::new(Variant::Cpu, "1.31.1"))
        );
    }

    #[test]
    fn parse_rejects_incomplete_or_garbled_files() {
        assert!(Manifest::parse("").is_err());
        assert!(Manifest::parse("package=onnxruntime\nversion=1.31.1\nvariant=cpu\n").is_err());
        assert!(Manifest::parse("package onnxruntime").is_err());
        assert!(
            Manifest::parse("package=a\nversion=1\nvariant=tpu\nlibrary=libonnxruntime.so.1")
                .is_err()
        );
    }

    #[test]
    fn same_wheel_compares_package_and_version() {
        let cpu = Manifest::new(Variant::Cpu, "1.31.1");
        assert!(cpu.same_wheel(&Manifest::new(Variant::Cpu, "1.31.1")));
        assert!(!cpu.same_wheel(&Manifest::new(Variant::Gpu, "1.31.1")));
        assert!(!cpu.same_wheel(&Manifest::new(Variant::Cpu, "1.30.0")));
    }
}
