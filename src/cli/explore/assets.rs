//! The page, compiled into the binary: no build step, no file to install, no request leaves the
//! machine. The chart library is uPlot 1.6.32 (MIT, `static/vendor/uPlot.LICENSE`), copied
//! unchanged from its npm package.

/// The files served under `/`: path, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("static/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_bytes!("static/style.css"),
    ),
    (
        "/vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/vendor/uPlot.iife.min.js"),
    ),
    (
        "/vendor/uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("static/vendor/uPlot.min.css"),
    ),
    (
        "/vendor/uPlot.LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("static/vendor/uPlot.LICENSE"),
    ),
];

/// The content type and bytes of the page file at `path` (`/index.html` is `/`).
pub fn get(path: &str) -> Option<(&'static str, &'static [u8])> {
    let path = if path == "/index.html" { "/" } else { path };
    FILES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|&(_, ct, body)| (ct, body))
}
