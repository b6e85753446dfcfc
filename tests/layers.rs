//! The layers of `docs/ARCHITECTURE.md` hold in the code: a library module imports only from its
//! own layer or the layers below it, and no module imports the crate root's re-exports.
//!
//! The layer of each top-level module is read from the table of `docs/ARCHITECTURE.md` (its
//! first column is `N. name`, its second the modules in backticks), so the document and this
//! check cannot drift apart. Every `crate::...` path in a file's non-test code is an import.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `module -> layer` from the table of ARCHITECTURE.md.
fn layers(doc: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in doc.lines() {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        if cols.len() < 4 {
            continue;
        }
        let Some((num, _)) = cols[1].split_once(". ") else {
            continue;
        };
        let Ok(layer) = num.parse::<usize>() else {
            continue;
        };
        // The modules: the backticked names of the second column, before any `::`, `(` or `/`.
        for (i, part) in cols[2].split('`').enumerate() {
            if i % 2 == 1 && !part.contains('/') {
                let name = part.split("::").next().unwrap().trim();
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    out.entry(name.to_string()).or_insert(layer);
                }
            }
        }
    }
    out
}

/// The source files of the library (not the front ends, not the test files).
fn library_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            if p.file_name().unwrap() != "cli" {
                library_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs")
            && p.file_name().unwrap() != "tests.rs"
            && p.file_name().unwrap() != "main.rs"
            && p.file_name().unwrap() != "lib.rs"
        {
            out.push(p);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` items.
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let line = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The first segment of every `crate::` path in `code` (`crate::{a::X, b}` gives `a` and `b`).
fn imports(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        items.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                if depth == 1 {
                    item.push(c);
                }
            }
            items.push(item);
            for it in items {
                let head: String = it
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !head.is_empty() {
                    out.push(head);
                }
            }
        } else {
            let head: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(head);
        }
    }
    out
}

#[test]
fn imports_only_point_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let layer = layers(&doc);
    assert!(
        layer.len() >= 20,
        "the layer table of ARCHITECTURE.md names too few modules: {layer:?}"
    );
    let src = root.join("src");
    let mut files = Vec::new();
    library_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(&own) = layer.get(&module) else {
            wrong.push(format!(
                "src/{}: module `{module}` has no layer in docs/ARCHITECTURE.md",
                rel.display()
            ));
            continue;
        };
        for m in imports(&code(&std::fs::read_to_string(f).unwrap())) {
            match layer.get(&m) {
                None => wrong.push(format!(
                    "src/{}: imports `crate::{m}`, the crate root or a module without a layer",
                    rel.display()
                )),
                Some(&l) if l > own => wrong.push(format!(
                    "src/{}: `{module}` (layer {own}) imports `{m}` (layer {l}): an import up",
                    rel.display()
                )),
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_import_parser_reads_groups_and_paths() {
    let c = code("use crate::{loss::{Loss, LossKind}, theory};\nlet x = crate::io::read(); // crate::cli\n#[cfg(test)]\nuse crate::cli;");
    assert_eq!(imports(&c), vec!["loss", "theory", "io"]);
}
