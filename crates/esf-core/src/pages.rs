//! Rendering a page: a template, the data every page gets, and the friendly
//! error page that stands in when anything goes wrong.
use crate::http::{reason, Response};
use crate::templates::TemplateSet;
use crate::view::{escape_html, View};

/// Where a page is rendered: the templates of its section and the URL prefix
/// its links start with.
#[derive(Clone, Copy)]
pub struct Pages<'a> {
    pub templates: &'a TemplateSet,
    pub mount: &'a str,
}

impl<'a> Pages<'a> {
    /// Renders `template` with `view` plus `title` and `mount`. A template
    /// failure is logged with its file and line and answered with the 500 page.
    pub fn render(&self, status: u16, template: &str, title: &str, mut view: View) -> Response {
        view.text("title", title).text("mount", self.mount);
        let (result, reload_error) = self.templates.render(template, &view);
        if let Some(e) = reload_error {
            log::error!("templates changed but were not reloaded, the previous ones keep serving: {e}");
        }
        match result {
            Ok(body) => Response::html(status, body),
            Err(e) => {
                log::error!("{e}");
                self.error(500, "Something went wrong on our side. Please try again in a moment.")
            }
        }
    }

    /// The friendly error page: the status, its reason and a message for the
    /// visitor, never a stack trace.
    pub fn error(&self, status: u16, message: &str) -> Response {
        let mut view = View::new();
        view.number("status", i64::from(status))
            .text("reason", reason(status))
            .text("message", message)
            .text("title", &format!("{status} {}", reason(status)))
            .text("mount", self.mount);
        match self.templates.render("error", &view).0 {
            Ok(body) => Response::html(status, body),
            Err(e) => {
                log::error!("the error page itself failed, sending the plain one: {e}");
                Response::html(status, plain_error_page(status, message))
            }
        }
    }
}

/// The last resort when even the error template cannot render.
pub fn plain_error_page(status: u16, message: &str) -> String {
    let reason = reason(status);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{status} {reason}</title></head>\n\
         <body><h1>{status} {reason}</h1><p>{}</p></body></html>\n",
        escape_html(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_page_has_status_and_escaped_message() {
        let set = TemplateSet::built_in();
        let pages = Pages { templates: &set, mount: "/store" };
        let r = pages.error(404, "no <such> page");
        assert_eq!(r.status, 404);
        assert!(r.body.contains("404 Not Found") && r.body.contains("no &lt;such&gt; page"), "{}", r.body);
        assert!(r.body.contains("href=\"/store/\""));
    }

    #[test]
    fn a_missing_template_becomes_a_500_page() {
        let set = TemplateSet::built_in();
        let pages = Pages { templates: &set, mount: "" };
        let r = pages.render(200, "no-such-template", "x", View::new());
        assert_eq!(r.status, 500);
        assert!(r.body.contains("500 Internal Server Error"));
        assert!(!r.body.contains("no-such-template"), "details stay in the log");
    }
}
