//! Task text to HTML: everything is escaped first, then a small markdown-ish subset is turned
//! into tags (paragraphs, `code`, fenced and indented code blocks, lists, headings, **bold**).
//! No raw HTML from a scenario ever reaches the page.
//!
//! Kept hand-written rather than CommonMark (pulldown-cmark) on purpose: escaping comes first
//! and the only tags are the few this file writes, so there is nothing to filter. A CommonMark
//! renderer passes raw HTML blocks and inline HTML through unless every such event is rewritten,
//! and writes links and images whose `javascript:`/`data:` URLs it does not refuse: each would be
//! a filter to get right. The tests below pin what a scenario cannot do.

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
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

/// Inline markup of one line (escaped): `code` spans, then **bold** outside them.
pub fn inline(line: &str) -> String {
    let escaped = escape(line);
    let mut out = String::new();
    let parts: Vec<&str> = escaped.split('`').collect();
    // An unmatched backtick stays a backtick.
    let pairs = if parts.len() % 2 == 1 { parts.len() } else { parts.len() - 1 };
    for (index, part) in parts.iter().enumerate() {
        if index >= pairs {
            out.push('`');
            out.push_str(&bold(part));
        } else if index % 2 == 1 {
            out.push_str("<code>");
            out.push_str(part);
            out.push_str("</code>");
        } else {
            out.push_str(&bold(part));
        }
    }
    out
}

fn bold(text: &str) -> String {
    let parts: Vec<&str> = text.split("**").collect();
    if parts.len() < 3 {
        return text.to_string();
    }
    let pairs = if parts.len() % 2 == 1 { parts.len() } else { parts.len() - 1 };
    let mut out = String::new();
    for (index, part) in parts.iter().enumerate() {
        if index >= pairs {
            out.push_str("**");
            out.push_str(part);
        } else if index % 2 == 1 {
            out.push_str("<strong>");
            out.push_str(part);
            out.push_str("</strong>");
        } else {
            out.push_str(part);
        }
    }
    out
}

#[derive(PartialEq)]
enum ListKind {
    Bullet,
    Numbered,
}

fn list_item(line: &str) -> Option<(ListKind, &str)> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    if let Some(rest) = trimmed.strip_prefix("- ").or_else(|| trimmed.strip_prefix("* ")) {
        return Some((ListKind::Bullet, rest));
    }
    let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
    if digits > 0
        && digits < 4
        && let Some(rest) = trimmed[digits..].strip_prefix(". ").or_else(|| trimmed[digits..].strip_prefix(") "))
    {
        return Some((ListKind::Numbered, rest));
    }
    None
}

#[derive(Default)]
struct Blocks {
    out: String,
    paragraph: Vec<String>,
    list: Option<(ListKind, Vec<String>)>,
}

impl Blocks {
    fn flush(&mut self) {
        if !self.paragraph.is_empty() {
            self.out.push_str("<p>");
            self.out.push_str(&self.paragraph.iter().map(|l| inline(l.trim())).collect::<Vec<_>>().join("\n"));
            self.out.push_str("</p>\n");
            self.paragraph.clear();
        }
        if let Some((kind, items)) = self.list.take() {
            let tag = if kind == ListKind::Bullet { "ul" } else { "ol" };
            self.out.push_str(&format!("<{tag}>"));
            for item in items {
                self.out.push_str("<li>");
                self.out.push_str(&inline(item.trim()));
                self.out.push_str("</li>");
            }
            self.out.push_str(&format!("</{tag}>\n"));
        }
    }

    fn code(&mut self, lines: &[String], language: &str) {
        self.flush();
        let class =
            if language.is_empty() { String::new() } else { format!(" class=\"language-{}\"", escape(language)) };
        self.out.push_str(&format!("<pre><code{class}>"));
        self.out.push_str(&escape(&lines.join("\n")));
        self.out.push_str("</code></pre>\n");
    }
}

/// Renders a scenario task (or any text written by a scenario author) to safe HTML.
pub fn render(text: &str) -> String {
    let mut blocks = Blocks::default();
    let lines: Vec<&str> = text.lines().collect();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        let trimmed = line.trim_start();
        if let Some(fence) = trimmed.strip_prefix("```") {
            let indent = line.len() - trimmed.len();
            let mut code = Vec::new();
            index += 1;
            while index < lines.len() && !lines[index].trim_start().starts_with("```") {
                let l = lines[index];
                // Drop the fence's own indentation from the block.
                let strip = l.len() - l.trim_start().len();
                code.push(l.get(strip.min(indent)..).unwrap_or(l.trim_start()).to_string());
                index += 1;
            }
            blocks.code(&code, fence.trim());
            index += 1;
            continue;
        }
        if trimmed.is_empty() {
            blocks.flush();
            index += 1;
            continue;
        }
        // An indented block after a blank line (not inside a list) is code.
        if line.starts_with("    ") && blocks.paragraph.is_empty() && blocks.list.is_none() {
            let mut code = Vec::new();
            while index < lines.len() && (lines[index].starts_with("    ") || lines[index].trim().is_empty()) {
                code.push(lines[index].get(4..).unwrap_or("").to_string());
                index += 1;
            }
            while code.last().is_some_and(|l| l.trim().is_empty()) {
                code.pop();
            }
            blocks.code(&code, "");
            continue;
        }
        if let Some(level) = ["### ", "## ", "# "].iter().position(|p| trimmed.starts_with(p)) {
            blocks.flush();
            let tag = ["h5", "h4", "h3"][level];
            let title = trimmed.trim_start_matches('#').trim();
            blocks.out.push_str(&format!("<{tag}>{}</{tag}>\n", inline(title)));
            index += 1;
            continue;
        }
        if let Some((kind, rest)) = list_item(line) {
            if !blocks.paragraph.is_empty() || blocks.list.as_ref().is_some_and(|(k, _)| *k != kind) {
                blocks.flush();
            }
            blocks.list.get_or_insert_with(|| (kind, Vec::new())).1.push(rest.to_string());
            index += 1;
            continue;
        }
        match &mut blocks.list {
            // A continuation line of the last item.
            Some((_, items)) if line.starts_with(' ') => {
                if let Some(last) = items.last_mut() {
                    last.push(' ');
                    last.push_str(trimmed);
                }
            }
            _ => {
                if blocks.list.is_some() {
                    blocks.flush();
                }
                blocks.paragraph.push(line.to_string());
            }
        }
        index += 1;
    }
    blocks.flush();
    blocks.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html_everywhere() {
        let html = render("<script>alert(1)</script>\n\n```\n<b>x</b>\n```\n- <i>y</i> `<z>`");
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>"));
        assert!(!html.contains("<i>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("<code>&lt;z&gt;</code>"));
    }

    #[test]
    fn renders_blocks() {
        let html = render(
            "Intro `kubectl get pods` and **this**.\n\n```yaml\na: 1\n  b: 2\n```\n\n1. one\n2. two\n   more\n\n- x\n\n    indented code\n\n## Head",
        );
        assert!(html.contains("<p>Intro <code>kubectl get pods</code> and <strong>this</strong>.</p>"), "{html}");
        assert!(html.contains("<pre><code class=\"language-yaml\">a: 1\n  b: 2</code></pre>"), "{html}");
        assert!(html.contains("<ol><li>one</li><li>two more</li></ol>"), "{html}");
        assert!(html.contains("<ul><li>x</li></ul>"), "{html}");
        assert!(html.contains("<pre><code>indented code</code></pre>"), "{html}");
        assert!(html.contains("<h4>Head</h4>"), "{html}");
    }

    #[test]
    fn no_markup_of_a_task_or_a_hint_becomes_a_tag_or_a_link() {
        let attacks = [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[click](javascript:alert(1))",
            "![x](data:text/html,<script>alert(1)</script>)",
            "<a href=\"javascript:alert(1)\">x</a>",
            "`</code><script>alert(1)</script>`",
            "**<script>alert(1)</script>**",
            "<div>\n<script>alert(1)</script>\n</div>",
        ];
        for attack in attacks {
            for html in [render(attack), render(&format!("- {attack}")), inline(attack)] {
                assert!(!html.contains("<script"), "{attack}: {html}");
                assert!(!html.contains("<img") && !html.contains("<a ") && !html.contains("<div"), "{attack}: {html}");
                assert!(!html.contains("href=\""), "{attack}: {html}");
                // Only the tags this renderer writes.
                let tags: Vec<&str> = html.split('<').skip(1).map(|t| t.split(['>', ' ']).next().unwrap()).collect();
                for tag in tags {
                    let known = ["p", "/p", "code", "/code", "strong", "/strong", "ul", "/ul", "li", "/li"];
                    assert!(known.contains(&tag), "{attack}: unexpected <{tag}> in {html}");
                }
            }
        }
    }

    #[test]
    fn unmatched_backticks_stay() {
        assert_eq!(render("a ` b"), "<p>a ` b</p>\n");
    }
}
