//! containerd's config schema versions and where each keeps the CRI runtimes.

use toml_edit::DocumentMut;

/// The `version` of a containerd config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// No `version` (containerd 1.x reads it as version 1): plugins keyed by short id (`cri`).
    V1,
    /// `version = 2` (containerd 1.3 to 1.7; 2.x still reads it).
    V2,
    /// `version = 3` (containerd 2.x): the CRI runtime settings are their own plugin.
    V3,
}

impl Schema {
    /// The schema a config document declares, or the `version` value it does not support.
    pub fn of(doc: &DocumentMut) -> Result<Schema, String> {
        let Some(version) = doc.get("version") else {
            return Ok(Schema::V1);
        };
        match version.as_integer() {
            Some(1) => Ok(Schema::V1),
            Some(2) => Ok(Schema::V2),
            Some(3) => Ok(Schema::V3),
            _ => Err(version.to_string().trim().to_string()),
        }
    }

    /// The plugin whose `containerd.runtimes` table holds the CRI runtime handlers.
    pub fn cri_runtime_plugin(self) -> &'static str {
        match self {
            Schema::V1 => "cri",
            Schema::V2 => "io.containerd.grpc.v1.cri",
            Schema::V3 => "io.containerd.cri.v1.runtime",
        }
    }

    /// The key path of the `runtimes` table.
    pub fn runtimes_path(self) -> [&'static str; 4] {
        [
            "plugins",
            self.cri_runtime_plugin(),
            "containerd",
            "runtimes",
        ]
    }

    /// Whether a drop-in file plus an `imports` entry can register our runtime. Before
    /// containerd 2.0 (schema 3), an imported file's plugin section *replaces* the main
    /// file's section of the same plugin instead of merging into it (containerd issue 5837),
    /// which would wipe the node's CRI settings; so schemas 1 and 2 are edited in place.
    pub fn uses_drop_in(self) -> bool {
        self == Schema::V3
    }

    /// The `version` number as written in a config file.
    pub fn number(self) -> i64 {
        match self {
            Schema::V1 => 1,
            Schema::V2 => 2,
            Schema::V3 => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(text: &str) -> Result<Schema, String> {
        Schema::of(&text.parse().unwrap())
    }

    #[test]
    fn reads_the_version_key() {
        assert_eq!(schema(""), Ok(Schema::V1));
        assert_eq!(schema("version = 1\n"), Ok(Schema::V1));
        assert_eq!(schema("version = 2\n"), Ok(Schema::V2));
        assert_eq!(schema("version = 3\n"), Ok(Schema::V3));
        assert_eq!(schema("version = 4\n"), Err("4".to_string()));
        assert_eq!(schema("version = \"2\"\n"), Err("\"2\"".to_string()));
    }

    #[test]
    fn each_schema_names_its_cri_plugin() {
        assert_eq!(Schema::V1.runtimes_path()[1], "cri");
        assert_eq!(Schema::V2.runtimes_path()[1], "io.containerd.grpc.v1.cri");
        assert_eq!(
            Schema::V3.runtimes_path()[1],
            "io.containerd.cri.v1.runtime"
        );
        assert!(Schema::V3.uses_drop_in() && !Schema::V2.uses_drop_in());
    }
}
