//! Where a process's output goes, as containerd names it: a FIFO path, `fifo://`,
//! `file://` or a `binary://` logger with its arguments in the query.

use std::path::PathBuf;

use crate::error::{Result, ShimError};

/// Where one output stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Null,
    Fifo(PathBuf),
    File(PathBuf),
    /// A logger binary and its arguments (from the URI's query).
    Binary {
        path: PathBuf,
        args: Vec<String>,
    },
}

impl Destination {
    pub fn parse(uri: &str) -> Result<Self> {
        if uri.is_empty() {
            return Ok(Destination::Null);
        }
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Ok(Destination::Fifo(PathBuf::from(uri)));
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let path = percent_decode(path)
            .map_err(|reason| ShimError::invalid(format!("stdio URI {uri:?}"), reason))?;
        if !path.starts_with('/') {
            return Err(ShimError::invalid(
                format!("stdio URI {uri:?}"),
                "the path must be absolute",
            ));
        }
        match scheme {
            "fifo" => Ok(Destination::Fifo(path.into())),
            "file" => Ok(Destination::File(path.into())),
            "binary" => {
                let mut args = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    let decode = |s: &str| {
                        percent_decode(&s.replace('+', " ")).map_err(|reason| {
                            ShimError::invalid(format!("stdio URI {uri:?}"), reason)
                        })
                    };
                    args.push(decode(k)?);
                    if !v.is_empty() {
                        args.push(decode(v)?);
                    }
                }
                Ok(Destination::Binary {
                    path: path.into(),
                    args,
                })
            }
            other => Err(ShimError::invalid(
                format!("stdio URI {uri:?}"),
                format!("scheme {other:?} is not supported (fifo path, file://, binary://)"),
            )),
        }
    }
}

fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("truncated %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad %-escape %{hex}"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 after decoding".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_fifos_and_empty_is_null() {
        assert_eq!(Destination::parse("").unwrap(), Destination::Null);
        assert_eq!(
            Destination::parse("/run/containerd/fifo/1/c-stdout").unwrap(),
            Destination::Fifo("/run/containerd/fifo/1/c-stdout".into())
        );
        assert_eq!(
            Destination::parse("fifo:///tmp/x").unwrap(),
            Destination::Fifo("/tmp/x".into())
        );
    }

    #[test]
    fn file_uris_are_decoded() {
        assert_eq!(
            Destination::parse("file:///var/log/my%20app.log").unwrap(),
            Destination::File("/var/log/my app.log".into())
        );
    }

    #[test]
    fn binary_uris_carry_their_query_as_arguments() {
        let d =
            Destination::parse("binary:///usr/bin/logger?id=abc&level=debug+info&flag").unwrap();
        assert_eq!(
            d,
            Destination::Binary {
                path: "/usr/bin/logger".into(),
                args: vec![
                    "id".into(),
                    "abc".into(),
                    "level".into(),
                    "debug info".into(),
                    "flag".into()
                ],
            }
        );
    }

    #[test]
    fn bad_uris_are_errors_naming_the_uri() {
        let err = Destination::parse("tcp://host:1").unwrap_err().to_string();
        assert!(err.contains("tcp://host:1") && err.contains("tcp"), "{err}");
        assert!(Destination::parse("file://relative").is_err());
        assert!(Destination::parse("file:///bad%zz").is_err());
    }
}
