//! Reading and writing matrices and result files.
//!
//! - [`read_matrix`]: an `N x d` matrix from `.npy` (f32 or f64, C or Fortran order, as numpy
//!   writes them) or from CSV without a header.
//! - [`write_npy`]: an `.npy` file (f64), written atomically.
//! - [`write_atomic`]: any file, written to a temporary file beside it and renamed into place, so a
//!   failure never leaves a half-written output.

use crate::error::{Error, Result};
use ndarray::Array2;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadInput {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads a 2-D matrix from `.npy` or headerless `.csv`/`.txt`, choosing by the extension.
///
/// # Errors
/// Unreadable file, unknown extension, an `.npy` that is not 2-D or not f32/f64 or is truncated,
/// a ragged or non-numeric CSV, an empty matrix.
pub fn read_matrix(path: &Path) -> Result<Array2<f64>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let m = match ext.as_deref() {
        Some("npy") => read_npy(path)?,
        Some("csv") | Some("txt") => read_csv_matrix(path)?,
        _ => {
            return Err(bad(
                path,
                "unknown file type: use a .npy file (f32 or f64) or a .csv without header",
            ))
        }
    };
    if m.nrows() == 0 || m.ncols() == 0 {
        return Err(bad(
            path,
            format!("the matrix is empty ({} x {})", m.nrows(), m.ncols()),
        ));
    }
    Ok(m)
}

fn open(path: &Path) -> Result<BufReader<File>> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| bad(path, e.to_string()))
}

/// Reads a 2-D f64 or f32 `.npy` file into f64.
pub fn read_npy(path: &Path) -> Result<Array2<f64>> {
    match Array2::<f64>::read_npy(open(path)?) {
        Ok(a) => Ok(a),
        Err(e64) => match Array2::<f32>::read_npy(open(path)?) {
            Ok(a) => Ok(a.mapv(f64::from)),
            Err(_) => Err(bad(
                path,
                format!("not a 2-D .npy matrix of float64 or float32: {e64}"),
            )),
        },
    }
}

/// Reads a headerless CSV of numbers (comma separated; blank lines ignored).
pub fn read_csv_matrix(path: &Path) -> Result<Array2<f64>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(open(path)?);
    let mut data = Vec::new();
    let mut cols = None;
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| bad(path, e.to_string()))?;
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        match cols {
            None => cols = Some(rec.len()),
            Some(c) if c != rec.len() => {
                return Err(bad(
                    path,
                    format!(
                        "row {} has {} values, the first row has {c}",
                        i + 1,
                        rec.len()
                    ),
                ))
            }
            _ => {}
        }
        for f in rec.iter() {
            data.push(
                f.parse::<f64>()
                    .map_err(|_| bad(path, format!("row {}: '{f}' is not a number", i + 1)))?,
            );
        }
    }
    let c = cols.unwrap_or(0);
    let r = data.len().checked_div(c).unwrap_or(0);
    Array2::from_shape_vec((r, c), data).map_err(|e| bad(path, e.to_string()))
}

/// A temporary path beside `path` (same directory, so the final rename is atomic).
fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp{}", std::process::id()))
}

/// Writes a file atomically: `write` fills a temporary file beside `path`, which is then renamed
/// over `path`. On any error the temporary file is removed and `path` is untouched.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = temp_beside(path);
    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp).map_err(io)?);
        write(&mut w)?;
        w.flush().map_err(io)?;
        w.get_ref().sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` to `path`, atomically (see [`write_atomic`]).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| {
        w.write_all(bytes).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    })
}

/// Writes `a` as a little-endian f64 `.npy` file, atomically.
pub fn write_npy(path: &Path, a: &Array2<f64>) -> Result<()> {
    write_atomic(path, |w| {
        a.write_npy(w).map_err(|e| Error::BadInput {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_and_csv() {
        let dir = tempfile::tempdir().unwrap();
        let a = Array2::from_shape_fn((3, 4), |(i, j)| i as f64 - 0.5 * j as f64);
        let p = dir.path().join("a.npy");
        write_npy(&p, &a).unwrap();
        assert_eq!(read_matrix(&p).unwrap(), a);
        let c = dir.path().join("a.csv");
        std::fs::write(&c, "1, 2\n3,4\n\n").unwrap();
        assert_eq!(
            read_matrix(&c).unwrap(),
            ndarray::array![[1.0, 2.0], [3.0, 4.0]]
        );
        std::fs::write(&c, "1,2\n3\n").unwrap();
        assert!(read_matrix(&c).is_err());
        std::fs::write(&c, "1,x\n").unwrap();
        assert!(read_matrix(&c).is_err());
        assert!(read_matrix(&dir.path().join("a.bin")).is_err());
        assert!(read_matrix(&dir.path().join("missing.npy")).is_err());
    }
}
