//! The data a template receives.
//!
//! Strings go in HTML-escaped: a template prints `{{ name }}` and gets safe
//! markup without remembering a filter. Markup the application itself built
//! goes in through [`View::raw_html`], the only way to put unescaped text on a
//! page.
use liquid::model::{KString, Object, Value};
use liquid::ValueView;

#[derive(Debug, Default, Clone)]
pub struct View(Object);

impl View {
    pub fn new() -> View {
        View(Object::new())
    }

    /// User-visible text, escaped for HTML.
    pub fn text(&mut self, key: &'static str, value: &str) -> &mut View {
        self.0.insert(KString::from_static(key), Value::scalar(escape_html(value)));
        self
    }

    /// Markup built by the application (never user input).
    pub fn raw_html(&mut self, key: &'static str, html: String) -> &mut View {
        self.0.insert(KString::from_static(key), Value::scalar(html));
        self
    }

    pub fn number(&mut self, key: &'static str, value: i64) -> &mut View {
        self.0.insert(KString::from_static(key), Value::scalar(value));
        self
    }

    pub fn flag(&mut self, key: &'static str, value: bool) -> &mut View {
        self.0.insert(KString::from_static(key), Value::scalar(value));
        self
    }

    pub fn child(&mut self, key: &'static str, child: View) -> &mut View {
        self.0.insert(KString::from_static(key), Value::Object(child.0));
        self
    }

    pub fn list(&mut self, key: &'static str, items: Vec<View>) -> &mut View {
        self.0.insert(KString::from_static(key), Value::Array(items.into_iter().map(|v| Value::Object(v.0)).collect()));
        self
    }

    /// A model's plain view object, every string in it escaped.
    pub fn object<T: serde::Serialize>(&mut self, key: &'static str, value: &T) -> &mut View {
        let value = liquid::model::to_value(value).map(escape_strings).unwrap_or(Value::Nil);
        self.0.insert(KString::from_static(key), value);
        self
    }

    pub fn as_object(&self) -> &Object {
        &self.0
    }
}

fn escape_strings(value: Value) -> Value {
    match value {
        Value::Scalar(s) if s.type_name() == "string" => Value::scalar(escape_html(s.to_kstr().as_str())),
        Value::Array(items) => Value::Array(items.into_iter().map(escape_strings).collect()),
        Value::Object(object) => Value::Object(object.into_iter().map(|(k, v)| (k, escape_strings(v))).collect()),
        other => other,
    }
}

/// Escapes the five characters that matter in HTML text and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape_html(r#"<b a="1">Zoë & 'x'</b>"#), "&lt;b a=&quot;1&quot;&gt;Zoë &amp; &#39;x&#39;&lt;/b&gt;");
    }

    #[test]
    fn objects_are_escaped_throughout() {
        #[derive(serde::Serialize)]
        struct Model {
            name: String,
            price_cents: i32,
            tags: Vec<String>,
        }
        let mut v = View::new();
        v.object("m", &Model { name: "<b>".into(), price_cents: 5, tags: vec!["a&b".into()] });
        let m = v.as_object().get("m").unwrap().as_object().unwrap();
        assert_eq!(m.get("name").unwrap().to_kstr().as_str(), "&lt;b&gt;");
        assert_eq!(m.get("price_cents").unwrap().as_scalar().unwrap().to_integer(), Some(5));
        assert_eq!(m.get("tags").unwrap().as_array().unwrap().get(0).unwrap().to_kstr().as_str(), "a&amp;b");
    }

    #[test]
    fn text_is_escaped_raw_is_not() {
        let mut v = View::new();
        v.text("t", "<i>").raw_html("r", "<i>".into());
        assert_eq!(v.as_object().get("t").unwrap().to_kstr().as_str(), "&lt;i&gt;");
        assert_eq!(v.as_object().get("r").unwrap().to_kstr().as_str(), "<i>");
    }
}
