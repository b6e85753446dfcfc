//! Reading and writing matrices and result files.
//!
//! - [`read_matrix`] ([`read_matrix_any`] in its own precision): an `N x d` matrix from `.npy` (f32 or f64, C or Fortran order, as numpy
//!   writes them) or from CSV without a header.
//! - [`write_npy`]: an `.npy` file (f64), written atomically.
//! - [`write_atomic`]: any file, written to a temporary file beside it and renamed into place, so a
//!   failure never leaves a half-written output.

use crate::error::{Error, Result};
use crate::limits::MemoryLimit;
use crate::matrix::Matrix;
use ndarray::Array2;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadInput {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads a 2-D matrix from `.npy` or headerless `.csv`/`.txt`, choosing by the extension, as
/// float64 (float32 `.npy` values widened exactly). [`read_matrix_any`] keeps float32 as float32.
///
/// # Errors
/// Unreadable file, unknown extension, an `.npy` that is not 2-D or not f32/f64 or is truncated,
/// a ragged or non-numeric CSV, an empty matrix; [`Error::TooLarge`] when it would need more
/// memory than `max_memory` (checked before it is read).
pub fn read_matrix(path: &Path, max_memory: MemoryLimit) -> Result<Array2<f64>> {
    read_matrix_any(path, max_memory).map(Matrix::into_f64)
}

/// Reads a 2-D matrix from `.npy` (float32 stays [`Matrix::F32`], float64 is [`Matrix::F64`]) or
/// from a headerless `.csv`/`.txt` (float64), choosing by the extension.
///
/// # Errors
/// As [`read_matrix`].
pub fn read_matrix_any(path: &Path, max_memory: MemoryLimit) -> Result<Matrix> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let m = match ext.as_deref() {
        Some("npy") => read_npy_any(path, max_memory)?,
        Some("csv") | Some("txt") => Matrix::F64(read_csv_matrix(path, max_memory)?),
        _ => {
            return Err(bad(
                path,
                "unknown file type: use a .npy file (f32 or f64) or a .csv without header",
            ))
        }
    };
    let (rows, cols) = m.dim();
    if rows == 0 || cols == 0 {
        return Err(bad(path, format!("the matrix is empty ({rows} x {cols})")));
    }
    Ok(m)
}

fn open(path: &Path) -> Result<BufReader<File>> {
    regular_file(path)?;
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| bad(path, e.to_string()))
}

/// The length in bytes of the regular file at `path` (symbolic links followed).
///
/// # Errors
/// [`Error::BadInput`] when `path` cannot be read or is not a regular file (a directory, a device
/// such as `/dev/zero`, a pipe), which could never be read to its end.
pub fn regular_file(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| bad(path, e.to_string()))?;
    if !meta.is_file() {
        return Err(bad(
            path,
            "not a regular file (a directory, a device or a pipe): give a file",
        ));
    }
    Ok(meta.len())
}

/// The whole text of the regular file at `path`, once its size was checked against
/// `max_memory` ([`crate::limits`]).
///
/// # Errors
/// As [`regular_file`]; [`Error::TooLarge`]; unreadable or not UTF-8.
pub fn read_text(path: &Path, max_memory: MemoryLimit) -> Result<String> {
    let len = regular_file(path)?;
    max_memory.check(&format!("reading {}", path.display()), len as f64)?;
    std::fs::read_to_string(path).map_err(|e| bad(path, e.to_string()))
}

/// The shape and item size an `.npy` header claims, and the header's length in bytes.
fn npy_header(path: &Path) -> Result<(Vec<usize>, usize, u64)> {
    regular_file(path)?;
    let mut f = File::open(path).map_err(|e| bad(path, e.to_string()))?;
    let not_npy = || bad(path, "not an .npy file (no NUMPY magic string)");
    let mut pre = [0u8; 12];
    let got = std::io::Read::read(&mut f, &mut pre).map_err(|e| bad(path, e.to_string()))?;
    if got < 10 || &pre[..6] != b"\x93NUMPY" {
        return Err(not_npy());
    }
    let (len, start) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as u64, 10u64),
        2 | 3 if got == 12 => (
            u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as u64,
            12u64,
        ),
        v => return Err(bad(path, format!("unsupported .npy format version {v}"))),
    };
    if len > 1 << 20 {
        return Err(bad(path, format!("its .npy header claims {len} bytes")));
    }
    let mut header = vec![0u8; len as usize];
    f.seek(SeekFrom::Start(start))
        .and_then(|_| std::io::Read::read_exact(&mut f, &mut header))
        .map_err(|_| bad(path, "truncated .npy header"))?;
    let text = String::from_utf8_lossy(&header);
    let field = |key: &str| -> Option<String> {
        let i = text.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = text[i..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest.to_string())
    };
    let descr = field("descr").ok_or_else(|| bad(path, ".npy header without 'descr'"))?;
    let itemsize: usize = descr
        .trim_start_matches(['\'', '"'])
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap_or(8);
    let shape_text = field("shape").ok_or_else(|| bad(path, ".npy header without 'shape'"))?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|r| r.split_once(')'))
        .map(|(a, _)| a)
        .ok_or_else(|| bad(path, "unreadable shape in the .npy header"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| x.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| {
            bad(
                path,
                format!("unreadable shape ({inner}) in the .npy header"),
            )
        })?;
    Ok((shape, itemsize.max(1), start + len))
}

/// Reads a 2-D f64 or f32 `.npy` file into f64 ([`read_npy_any`] keeps float32).
///
/// The shape the header claims is checked against the file's length (and `max_memory`,
/// [`crate::limits`]) before anything is allocated.
pub fn read_npy(path: &Path, max_memory: MemoryLimit) -> Result<Array2<f64>> {
    read_npy_any(path, max_memory).map(Matrix::into_f64)
}

/// Reads a 2-D f64 or f32 `.npy` file in its own precision.
///
/// The shape the header claims is checked against the file's length (and `max_memory`,
/// [`crate::limits`]) before anything is allocated.
pub fn read_npy_any(path: &Path, max_memory: MemoryLimit) -> Result<Matrix> {
    let (shape, itemsize, data_start) = npy_header(path)?;
    let file_len = std::fs::metadata(path)
        .map_err(|e| bad(path, e.to_string()))?
        .len();
    let values = shape.iter().fold(1f64, |a, &x| a * x as f64);
    let claimed = values * itemsize as f64;
    let held = file_len.saturating_sub(data_start);
    if claimed > held as f64 {
        let dims: Vec<String> = shape.iter().map(|x| x.to_string()).collect();
        return Err(bad(
            path,
            format!(
                "its header claims shape ({}), {claimed} bytes of data, but the file holds only {held} bytes (truncated or corrupt)",
                dims.join(", ")
            ),
        ));
    }
    max_memory.check(
        &format!("reading {}", path.display()),
        crate::limits::matrix_bytes(values as usize, 2),
    )?;
    match Array2::<f64>::read_npy(open(path)?) {
        Ok(a) => Ok(Matrix::F64(a)),
        Err(e64) => match Array2::<f32>::read_npy(open(path)?) {
            Ok(a) => Ok(Matrix::F32(a)),
            Err(_) => Err(bad(
                path,
                format!("not a 2-D .npy matrix of float64 or float32: {e64}"),
            )),
        },
    }
}

/// Reads a headerless CSV of numbers (comma separated; blank lines ignored).
///
/// The file must be a regular file, and it is refused before reading when its size exceeds
/// `max_memory` ([`crate::limits`]: a number in text takes about as many bytes as the
/// `f64` it becomes), or while reading as soon as its values would.
///
/// # Errors
/// As [`read_matrix`]; [`Error::TooLarge`].
pub fn read_csv_matrix(path: &Path, max_memory: MemoryLimit) -> Result<Array2<f64>> {
    let what = format!("reading {}", path.display());
    let len = regular_file(path)?;
    max_memory.check(&what, len as f64)?;
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
        if data.len() + rec.len() > data.capacity() {
            // The vector is about to grow (to at most twice its size): check that first.
            let want = (data.len() + rec.len()).max(2 * data.capacity());
            max_memory.check(&what, crate::limits::matrix_bytes(want, 1))?;
            data.reserve_exact(want - data.len());
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

/// The file format of a matrix written by [`write_matrix`], chosen by the extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatrixFormat {
    /// `.npy`: little-endian float64.
    Npy,
    /// `.csv`: one row per line, comma separated, no header, every value in full precision
    /// (the shortest text that reads back to the same float).
    Csv,
}

impl MatrixFormat {
    /// The format for `path`'s extension (`.npy` or `.csv`, any case).
    ///
    /// ```
    /// use ccem::io::MatrixFormat;
    /// use std::path::Path;
    /// assert_eq!(MatrixFormat::from_path(Path::new("U.csv")).unwrap(), MatrixFormat::Csv);
    /// assert!(MatrixFormat::from_path(Path::new("U.txt")).is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] for any other extension.
    pub fn from_path(path: &Path) -> Result<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("npy") => Ok(MatrixFormat::Npy),
            Some("csv") => Ok(MatrixFormat::Csv),
            _ => Err(Error::Config(format!(
                "cannot save a matrix to '{}': the extension picks the format, use .npy or .csv",
                path.display()
            ))),
        }
    }
}

/// Writes `a` atomically, as `.npy` or headerless `.csv` according to the extension
/// ([`MatrixFormat::from_path`]). [`read_matrix`] reads either back exactly.
///
/// # Errors
/// An extension other than `.npy` or `.csv`; the file cannot be written.
pub fn write_matrix(path: &Path, a: &Array2<f64>) -> Result<()> {
    match MatrixFormat::from_path(path)? {
        MatrixFormat::Npy => write_npy(path, a),
        MatrixFormat::Csv => {
            let mut text = String::with_capacity(a.len() * 20);
            for row in a.rows() {
                let cells: Vec<String> = row.iter().map(|x| x.to_string()).collect();
                text.push_str(&cells.join(","));
                text.push('\n');
            }
            write_bytes(path, text.as_bytes())
        }
    }
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
        assert_eq!(read_matrix(&p, MemoryLimit::Available).unwrap(), a);
        let c = dir.path().join("a.csv");
        std::fs::write(&c, "1, 2\n3,4\n\n").unwrap();
        assert_eq!(
            read_matrix(&c, MemoryLimit::Available).unwrap(),
            ndarray::array![[1.0, 2.0], [3.0, 4.0]]
        );
        std::fs::write(&c, "1,2\n3\n").unwrap();
        assert!(read_matrix(&c, MemoryLimit::Available).is_err());
        std::fs::write(&c, "1,x\n").unwrap();
        assert!(read_matrix(&c, MemoryLimit::Available).is_err());
        assert!(read_matrix(&dir.path().join("a.bin"), MemoryLimit::Available).is_err());
        assert!(read_matrix(&dir.path().join("missing.npy"), MemoryLimit::Available).is_err());
    }

    #[test]
    fn write_matrix_picks_the_format_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        let a = ndarray::array![[0.1, -1.0 / 3.0], [1e-300, 2.0]];
        for name in ["U.npy", "U.csv", "U.CSV"] {
            let p = dir.path().join(name);
            write_matrix(&p, &a).unwrap();
            assert_eq!(
                read_matrix(&p, MemoryLimit::Available).unwrap(),
                a,
                "{name}"
            );
        }
        let text = std::fs::read_to_string(dir.path().join("U.csv")).unwrap();
        assert!(text.starts_with("0.1,-0.3333333333333333\n"), "{text}");
        let e = write_matrix(&dir.path().join("U.txt"), &a).unwrap_err();
        assert!(e.to_string().contains(".npy or .csv"), "{e}");
        assert!(!dir.path().join("U.txt").exists());
    }

    #[test]
    fn npy_claiming_more_data_than_it_holds_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.npy");
        let mut header =
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 6), }".to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0u8; 48]);
        std::fs::write(&p, &bytes).unwrap();
        let e = read_matrix(&p, MemoryLimit::Available)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("(1000000000, 6)") && e.contains("holds only 48 bytes"),
            "{e}"
        );
        // A well-formed file still reads.
        let ok = dir.path().join("ok.npy");
        let a = Array2::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as f64);
        write_npy(&ok, &a).unwrap();
        assert_eq!(read_matrix(&ok, MemoryLimit::Available).unwrap(), a);
    }
}
