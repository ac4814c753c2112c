//! How `import` reports progress: bars on a terminal, JSON lines with `--json`, no bars with
//! `--quiet` or when standard error is not a terminal. Notes (such as which of several
//! manifests for a platform was taken) go to standard error in every mode but `--json`, where
//! they are events.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use ocitree::progress::{Event, Progress, Reporter};
use serde_json::json;

/// Longest string field (image names, paths) in a JSON line.
const MAX_FIELD: usize = 1024;

/// One JSON object per line on standard output.
pub struct JsonLines;

impl JsonLines {
    /// Prints `value` as one line.
    pub fn print(value: &serde_json::Value) {
        let mut out = std::io::stdout().lock();
        // A closed stdout ends the command elsewhere; a lost progress line is not an error.
        let _ = writeln!(out, "{value}");
        let _ = out.flush();
    }

    /// Cuts a string field to [`MAX_FIELD`] bytes (on a character boundary).
    pub fn bounded(s: &str) -> String {
        let mut end = s.len().min(MAX_FIELD);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    }
}

impl Progress for JsonLines {
    fn event(&self, e: &Event) {
        JsonLines::print(&json!(e));
    }
}

/// Terminal bars: one for all bytes to read, one per layer being read (write phase), and one
/// per layer downloading from a registry (download phase, ahead of the import).
struct Bars {
    multi: MultiProgress,
    total: Mutex<Option<ProgressBar>>,
    layers: Mutex<HashMap<usize, (ProgressBar, u64)>>,
    downloads: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress for Bars {
    fn event(&self, e: &Event) {
        let bytes = ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .expect("static template")
        .progress_chars("=> ");
        match e {
            Event::Resolved { bytes: total, .. } => {
                let bar = self.multi.add(ProgressBar::new(*total));
                bar.set_style(bytes.clone());
                bar.set_prefix("total");
                *self.total.lock().expect("progress lock") = Some(bar);
            }
            Event::LayerStart {
                index,
                digest,
                size,
            } => {
                let bar = self.multi.add(ProgressBar::new(*size));
                bar.set_style(bytes);
                bar.set_prefix(format!("layer {index}"));
                bar.set_message(digest.chars().take(19).collect::<String>());
                self.layers
                    .lock()
                    .expect("progress lock")
                    .insert(*index, (bar, 0));
            }
            Event::LayerBytes { index, read } => {
                if let Some((bar, last)) = self.layers.lock().expect("progress lock").get_mut(index)
                {
                    bar.set_position(*read);
                    if let Some(t) = &*self.total.lock().expect("progress lock") {
                        t.inc(read - *last);
                    }
                    *last = *read;
                }
            }
            Event::LayerDownload {
                digest,
                downloaded,
                size,
            } => {
                let mut downloads = self.downloads.lock().expect("progress lock");
                let bar = downloads.entry(digest.clone()).or_insert_with(|| {
                    let bar = self.multi.add(ProgressBar::new(*size));
                    bar.set_style(bytes);
                    bar.set_prefix("download");
                    bar.set_message(digest.chars().take(19).collect::<String>());
                    bar
                });
                bar.set_position(*downloaded);
                if downloaded >= size {
                    bar.finish_and_clear();
                }
            }
            Event::LayerDone { index, .. } => {
                if let Some((bar, _)) = self.layers.lock().expect("progress lock").remove(index) {
                    bar.finish_and_clear();
                }
            }
            Event::Done { .. } => {
                if let Some(t) = self.total.lock().expect("progress lock").take() {
                    t.finish_and_clear();
                }
            }
            _ => {}
        }
    }
}

/// Notes for the user on standard error (whatever the output mode but JSON, which carries
/// them as events), and bars when there are any.
struct Human(Option<Bars>);

impl Progress for Human {
    fn event(&self, e: &Event) {
        if let Some(n) = note(e) {
            eprintln!("{n}");
        }
        if let Some(b) = &self.0 {
            b.event(e);
        }
    }
}

/// The note an event calls for, if any.
fn note(e: &Event) -> Option<String> {
    match e {
        Event::PlatformFirstOfSeveral {
            image,
            platform,
            chosen,
            others,
        } => Some(format!(
            "note: {image}: {} manifests for platform {platform}; took the first listed, {chosen} \
             (the image-index spec's rule). To pick another, name it by digest:\n{}",
            others.len() + 1,
            others
                .iter()
                .map(|o| format!("  {o}"))
                .collect::<Vec<_>>()
                .join("\n")
        )),
        _ => None,
    }
}

/// The reporter for the chosen output: JSON lines; else notes on standard error, with bars
/// on a terminal unless `quiet`.
pub fn reporter(json: bool, quiet: bool) -> Reporter {
    if json {
        return Reporter::new(Arc::new(JsonLines));
    }
    let bars = (!quiet && std::io::stderr().is_terminal()).then(|| Bars {
        multi: MultiProgress::new(),
        total: Mutex::new(None),
        layers: Mutex::new(HashMap::new()),
        downloads: Mutex::new(HashMap::new()),
    });
    Reporter::new(Arc::new(Human(bars)))
}
