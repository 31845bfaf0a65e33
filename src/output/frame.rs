//! Tables (polars frames) as files under the output rule: Parquet tagged as blockdrop's when
//! the name ends in `.parquet`, CSV otherwise; written whole or not at all.

use std::path::Path;

use polars::prelude::*;

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::output::{check_replaceable, WRITER, WRITER_KEY};

/// True when `path` names a Parquet file (by extension).
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// The key-value entry in which Arrow writers embed their schema.
const ARROW_SCHEMA_KEY: &str = "ARROW:schema";

/// Whether a Parquet file carries blockdrop's tag in its key-value metadata (its footer only;
/// a footer that cannot be read is not ours).
fn tagged_parquet(path: &Path) -> bool {
    parquet_metadata(path)
        .is_ok_and(|pairs| pairs.get(WRITER_KEY).map(String::as_str) == Some(WRITER))
}

/// Whether [`write_frame`] may write `path` (nothing there, or a Parquet file blockdrop
/// tagged; its folder exists), checked before the work that produces the frame.
pub fn check_frame_target(path: &Path) -> Result<()> {
    let parquet = is_parquet(path);
    check_replaceable(path, |p| parquet && tagged_parquet(p))?;
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(folder) = folder.filter(|f| !f.is_dir()) {
        return Err(Error::bad_input(folder, "is not a folder that exists"));
    }
    Ok(())
}

/// Writes a frame atomically: Parquet (tagged as blockdrop's) when `path` ends in `.parquet`,
/// CSV otherwise. An existing file is replaced only when it is a tagged Parquet file.
pub fn write_frame(df: &mut DataFrame, path: &Path) -> Result<()> {
    write_frame_with(df, path, &[])
}

/// [`write_frame`], with `metadata` in a Parquet file's key-value metadata beside the tag.
pub fn write_frame_with(
    df: &mut DataFrame,
    path: &Path,
    metadata: &[(String, String)],
) -> Result<()> {
    let parquet = is_parquet(path);
    check_replaceable(path, |p| parquet && tagged_parquet(p))?;
    write_atomic(path, |file| {
        if parquet {
            let mut pairs = vec![(WRITER_KEY.to_string(), WRITER.to_string())];
            pairs.extend(metadata.iter().cloned());
            let tag = KeyValueMetadata::from_static(pairs);
            ParquetWriter::new(file)
                .with_key_value_metadata(Some(tag))
                .finish(df)
                .map(drop)
        } else {
            CsvWriter::new(file).finish(df)
        }
        .map_err(|e| Error::bad_input(path, format!("cannot write: {e}")))
    })
}

/// A Parquet file's key-value metadata (its footer only).
pub fn parquet_metadata(path: &Path) -> Result<std::collections::BTreeMap<String, String>> {
    let file = open_checked(path, Checks::Footer)?;
    // polars' footer parser panics on some corrupt footers: caught, as bad input.
    let metadata = crate::foreign_panic::catch(|| ParquetReader::new(file).get_metadata().cloned())
        .map_err(|_| Error::bad_input(path, "not a readable Parquet file (corrupt footer)"))?
        .map_err(|e| Error::bad_input(path, format!("not a readable Parquet file: {e}")))?;
    Ok(metadata
        .key_value_metadata
        .iter()
        .flatten()
        .filter_map(|entry| Some((entry.key.clone(), entry.value.clone()?)))
        .collect())
}

/// Reads a Parquet file into a frame.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = open_checked(path, Checks::WholeFile)?;
    // polars' readers panic on some corrupt files: caught, as bad input.
    crate::foreign_panic::catch(|| {
        let mut reader = ParquetReader::new(file);
        // The Arrow schema a writer may embed is decoded by polars without bounds (its
        // nesting and list widths come from the file): the Parquet schema, checked by
        // `parquet_bounds`, gives records files the same columns.
        let mut metadata = reader.get_metadata()?.as_ref().clone();
        if let Some(pairs) = metadata.key_value_metadata.as_mut() {
            pairs.retain(|pair| pair.key != ARROW_SCHEMA_KEY);
        }
        reader.set_metadata(std::sync::Arc::new(metadata));
        reader.finish()
    })
    .map_err(|_| Error::bad_input(path, "not a readable Parquet file (corrupt)"))?
    .map_err(|e| Error::bad_input(path, format!("not a readable Parquet file: {e}")))
}

/// How much of a Parquet file [`open_checked`] checks before polars reads it.
#[derive(Clone, Copy)]
enum Checks {
    /// The footer: before polars parses the footer alone.
    Footer,
    /// The footer and every page header: before polars reads the rows.
    WholeFile,
}

/// Opens a regular file and checks what its Parquet footer (and pages) declare against its
/// length and a memory budget (`parquet_bounds`), so polars is never handed sizes that cannot
/// be true; the file is returned at its start.
fn open_checked(path: &Path, checks: Checks) -> Result<std::fs::File> {
    use std::io::{Seek, SeekFrom};
    let (mut file, len) = crate::input::open_regular(path)?;
    match checks {
        Checks::Footer => super::parquet_bounds::check_footer(&mut file, len),
        Checks::WholeFile => super::parquet_bounds::check_file(&mut file, len),
    }
    .map_err(|problem| {
        Error::bad_input(path, format!("not a readable Parquet file: it {problem}"))
    })?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(path, e))?;
    Ok(file)
}
