//! Liquid templates: a search path of directories, compiled once, reloaded
//! when a file changes.
//!
//! `EsfTemplates DIR1 DIR2 …` makes one [`TemplateSet`]: a template named
//! `header` is the first `header.liquid` found along the path, then the
//! templates built into the module (so a co-branded section overrides only
//! the files it has). Every template can be included by any other with
//! `{% include "name" %}`.
//!
//! The whole set is compiled when the directive is read, so `apachectl -t`
//! reports a template that does not parse. In a running child the files'
//! modification times are looked at no more than once a second; a changed
//! set is compiled again and swapped in, and if it no longer parses the old
//! one keeps serving while the error goes to the log.
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use liquid::partials::{EagerCompiler, InMemorySource};
use parking_lot::{Mutex, RwLock};

use crate::view::View;

pub const EXTENSION: &str = "liquid";

/// Templates compiled into the module: the last stop of every search path.
const BUILT_IN: &[(&str, &str)] = &[
    ("layout_head", include_str!("../../../templates/layout_head.liquid")),
    ("layout_foot", include_str!("../../../templates/layout_foot.liquid")),
    ("hello", include_str!("../../../templates/hello.liquid")),
    ("error", include_str!("../../../templates/error.liquid")),
    ("product", include_str!("../../../templates/product.liquid")),
    ("product_list", include_str!("../../../templates/product_list.liquid")),
    ("home", include_str!("../../../templates/home.liquid")),
    ("category", include_str!("../../../templates/category.liquid")),
    ("search", include_str!("../../../templates/search.liquid")),
    ("cart", include_str!("../../../templates/cart.liquid")),
    ("order", include_str!("../../../templates/order.liquid")),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

/// One search path's templates, shared by all threads of a child.
pub struct TemplateSet {
    dirs: Vec<PathBuf>,
    compiled: RwLock<Arc<Compiled>>,
    /// Unix second of the last look at the files.
    last_check: AtomicU64,
    /// Serializes reloads so two threads never compile the same change.
    reloading: Mutex<()>,
}

impl fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateSet").field("dirs", &self.dirs).finish()
    }
}

struct Compiled {
    templates: HashMap<String, liquid::Template>,
    stamps: Vec<Stamp>,
}

impl TemplateSet {
    /// Compiles every template along `dirs`; an error names the file and line.
    pub fn load(dirs: Vec<PathBuf>) -> Result<TemplateSet, TemplateError> {
        for dir in &dirs {
            if !dir.is_dir() {
                return Err(TemplateError(format!("{} is not a directory", dir.display())));
            }
        }
        let compiled = compile(&dirs)?;
        Ok(TemplateSet {
            dirs,
            compiled: RwLock::new(Arc::new(compiled)),
            last_check: AtomicU64::new(now_secs()),
            reloading: Mutex::new(()),
        })
    }

    /// Only the templates built into the module.
    pub fn built_in() -> TemplateSet {
        TemplateSet::load(Vec::new()).expect("built-in templates parse")
    }

    /// Renders `name` with `view`, after picking up changed files (at most
    /// one look a second). A failed reload is returned as the second value,
    /// for the caller to log; the previous templates keep serving.
    pub fn render(&self, name: &str, view: &View) -> (Result<String, TemplateError>, Option<TemplateError>) {
        let reload_error = self.reload_if_changed().err();
        let compiled = self.compiled.read().clone();
        let result = match compiled.templates.get(name) {
            Some(template) => template
                .render(view.as_object())
                .map_err(|e| TemplateError(format!("template {name}.{EXTENSION}: {e}"))),
            None => Err(TemplateError(format!("no template {name}.{EXTENSION} in {:?} or built in", self.dirs))),
        };
        (result, reload_error)
    }

    fn reload_if_changed(&self) -> Result<(), TemplateError> {
        let now = now_secs();
        let last = self.last_check.load(Ordering::Relaxed);
        if now == last || self.dirs.is_empty() {
            return Ok(());
        }
        if self.last_check.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return Ok(()); // another thread is looking this second
        }
        let Some(_guard) = self.reloading.try_lock() else { return Ok(()) };
        let current = self.compiled.read().clone();
        if current.stamps.iter().all(|(path, stamp)| modified(path) == *stamp) {
            return Ok(());
        }
        let fresh = compile(&self.dirs)?;
        *self.compiled.write() = Arc::new(fresh);
        Ok(())
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// A template: its name, its text and where it came from.
type Source = (String, String, PathBuf);
/// A file or directory and its modification time when last compiled.
type Stamp = (PathBuf, Option<SystemTime>);

/// The sources along the path: the first file of each name wins.
fn collect_sources(dirs: &[PathBuf]) -> Result<(Vec<Source>, Vec<Stamp>), TemplateError> {
    let mut sources: Vec<Source> = Vec::new();
    // A directory's mtime changes when a file is added or removed.
    let mut stamps: Vec<Stamp> = dirs.iter().map(|d| (d.clone(), modified(d))).collect();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).map_err(|e| TemplateError(format!("cannot read {}: {e}", dir.display())))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == EXTENSION) && p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            if sources.iter().any(|(n, _, _)| *n == name) {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| TemplateError(format!("cannot read {}: {e}", path.display())))?;
            stamps.push((path.clone(), modified(&path)));
            sources.push((name, text, path));
        }
    }
    for (name, text) in BUILT_IN {
        if !sources.iter().any(|(n, _, _)| n == name) {
            sources.push((name.to_string(), text.to_string(), PathBuf::from(format!("(built in)/{name}.{EXTENSION}"))));
        }
    }
    Ok((sources, stamps))
}

fn compile(dirs: &[PathBuf]) -> Result<Compiled, TemplateError> {
    let (sources, stamps) = collect_sources(dirs)?;
    let mut partials = EagerCompiler::<InMemorySource>::empty();
    for (name, text, _) in &sources {
        partials.add(name.as_str(), text.as_str());
    }
    // Every file is also a partial, compiled here: a file that does not parse
    // fails the build, and is then found by parsing each file alone, so the
    // message names it.
    let parser = liquid::ParserBuilder::with_stdlib()
        .partials(partials)
        .build()
        .map_err(|e| name_broken_file(&sources).unwrap_or_else(|| TemplateError(format!("templates in {dirs:?}: {e}"))))?;
    let mut templates = HashMap::with_capacity(sources.len());
    for (name, text, path) in &sources {
        let template = parser.parse(text).map_err(|e| TemplateError(format!("{}: {e}", path.display())))?;
        templates.insert(name.clone(), template);
    }
    Ok(Compiled { templates, stamps })
}

fn name_broken_file(sources: &[Source]) -> Option<TemplateError> {
    let parser = liquid::ParserBuilder::with_stdlib().build().ok()?;
    sources
        .iter()
        .find_map(|(_, text, path)| parser.parse(text).err().map(|e| TemplateError(format!("{}: {e}", path.display()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(format!("{name}.{EXTENSION}")), text).unwrap();
    }

    fn render(set: &TemplateSet, name: &str, view: &View) -> String {
        let (out, reload) = set.render(name, view);
        assert!(reload.is_none(), "{reload:?}");
        out.unwrap()
    }

    #[test]
    fn first_directory_wins_and_built_ins_fill_in() {
        let shared = tempfile::tempdir().unwrap();
        let section = tempfile::tempdir().unwrap();
        write(shared.path(), "page", "{% include \"head\" %}body");
        write(shared.path(), "head", "shared-head|");
        write(section.path(), "head", "section-head|");
        let set = TemplateSet::load(vec![section.path().into(), shared.path().into()]).unwrap();
        assert_eq!(render(&set, "page", &View::new()), "section-head|body");
        let mut v = View::new();
        v.text("name", "<b>").text("title", "t").text("mount", "");
        assert!(render(&set, "hello", &v).contains("Hello &lt;b&gt;!"), "built-in hello");
    }

    #[test]
    fn a_syntax_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "broken", "{% if %}");
        let err = TemplateSet::load(vec![dir.path().into()]).unwrap_err().to_string();
        assert!(err.contains("broken.liquid"), "{err}");
    }

    #[test]
    fn missing_directory_is_an_error() {
        assert!(TemplateSet::load(vec!["/nonexistent/templates".into()]).is_err());
    }

    #[test]
    fn changed_file_is_reloaded_and_a_broken_change_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "page", "one");
        let set = TemplateSet::load(vec![dir.path().into()]).unwrap();
        assert_eq!(render(&set, "page", &View::new()), "one");
        write(dir.path(), "page", "two");
        // Force the next render to look (instead of sleeping a second).
        set.last_check.store(0, Ordering::Relaxed);
        let file = dir.path().join("page.liquid");
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options().write(true).open(&file).unwrap().set_modified(later).unwrap();
        assert_eq!(render(&set, "page", &View::new()), "two");
        write(dir.path(), "page", "{% if %}");
        std::fs::File::options().write(true).open(&file).unwrap().set_modified(later + std::time::Duration::from_secs(5)).unwrap();
        set.last_check.store(0, Ordering::Relaxed);
        let (out, reload) = set.render("page", &View::new());
        assert_eq!(out.unwrap(), "two");
        assert!(reload.unwrap().to_string().contains("page.liquid"));
    }

    #[test]
    fn unknown_template_is_an_error() {
        let set = TemplateSet::built_in();
        assert!(set.render("nope", &View::new()).0.is_err());
    }
}
