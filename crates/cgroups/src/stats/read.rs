//! Reading single control files strictly: absent or malformed is an error unless the caller
//! asks for an optional file.

use std::io;
use std::path::Path;

use super::{FlatKeyed, StatsError};
use crate::usage::PidsUsage;

fn read_error(path: &Path, source: io::Error) -> StatsError {
    StatsError::Read {
        path: path.to_owned(),
        source,
    }
}

pub(super) fn text(path: &Path) -> Result<String, StatsError> {
    std::fs::read_to_string(path).map_err(|source| read_error(path, source))
}

/// A file that may not exist on this kernel or host (swap accounting, kmem): `None` then.
pub(super) fn optional_text(path: &Path) -> Result<Option<String>, StatsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(read_error(path, source)),
    }
}

pub(super) fn parse_u64(path: &Path, value: &str) -> Result<u64, StatsError> {
    value.trim().parse().map_err(|_| StatsError::Parse {
        path: path.to_owned(),
        reason: format!("{:?} is not a number", value.trim()),
    })
}

pub(super) fn number(path: &Path) -> Result<u64, StatsError> {
    parse_u64(path, &text(path)?)
}

pub(super) fn optional_number(path: &Path) -> Result<Option<u64>, StatsError> {
    optional_text(path)?
        .map(|text| parse_u64(path, &text))
        .transpose()
}

/// A limit: a number, or `max` for none.
pub(super) fn parse_limit(path: &Path, value: &str) -> Result<Option<u64>, StatsError> {
    match value.trim() {
        "max" => Ok(None),
        limit => parse_u64(path, limit).map(Some),
    }
}

pub(super) fn limit(path: &Path) -> Result<Option<u64>, StatsError> {
    parse_limit(path, &text(path)?)
}

/// `key value` lines; a line that is not one is an error.
pub(super) fn parse_flat(path: &Path, text: &str) -> Result<FlatKeyed, StatsError> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (key, value) = line.split_once(' ').ok_or_else(|| StatsError::Parse {
                path: path.to_owned(),
                reason: format!("{line:?} is not a `key value` line"),
            })?;
            Ok((key.to_string(), parse_u64(path, value)?))
        })
        .collect()
}

pub(super) fn flat(path: &Path) -> Result<FlatKeyed, StatsError> {
    parse_flat(path, &text(path)?)
}

/// A key that every kernel writes in this file.
pub(super) fn key(map: &FlatKeyed, path: &Path, key: &str) -> Result<u64, StatsError> {
    map.get(key).copied().ok_or_else(|| StatsError::MissingKey {
        path: path.to_owned(),
        key: key.to_string(),
    })
}

/// `pids.current` and `pids.max` of a directory whose pids controller is there.
pub(super) fn pids(dir: &Path) -> Result<PidsUsage, StatsError> {
    Ok(PidsUsage {
        current: number(&dir.join("pids.current"))?,
        max: limit(&dir.join("pids.max"))?,
    })
}
