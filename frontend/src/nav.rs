//! The app's URL: the location as a signal, history entries pushed or replaced, same-site link
//! clicks and Back/Forward turned into navigation without a page load.
//!
//! Five flat pages whose state lives in the query need no more. A general router (nested routes,
//! path matching, params) cost about 20 KiB of the gzipped WASM, whose budget is 400 KiB.
//!
//! In: `window.location` and the user's clicks and Back/Forward. Out: [`use_location`]'s path,
//! [`use_query_map`]'s query, [`use_navigate`] to move, and the [`A`] link for the header.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

/// A query string's parameters, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `a=1&b=x%20y` (with or without a leading `?`).
    pub fn parse(search: &str) -> Query {
        let decode = |s: &str| {
            js_sys::decode_uri_component(&s.replace('+', " "))
                .map(String::from)
                .unwrap_or_else(|_| s.to_string())
        };
        Query(
            search
                .trim_start_matches('?')
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
}

/// Where the app is: path and query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Url {
    path: String,
    query: Query,
}

fn current() -> Url {
    let Some(loc) = web_sys::window().map(|w| w.location()) else {
        return Url::default();
    };
    Url {
        path: loc.pathname().unwrap_or_else(|_| "/".into()),
        query: Query::parse(&loc.search().unwrap_or_default()),
    }
}

#[derive(Clone, Copy)]
struct Nav(RwSignal<Url>);

fn nav() -> RwSignal<Url> {
    expect_context::<Nav>().0
}

/// How to move: a new history entry (the default) or in place of the current one; whether to
/// scroll to the top.
#[derive(Clone, Copy, Debug)]
pub struct NavigateOptions {
    pub replace: bool,
    pub scroll: bool,
}

impl Default for NavigateOptions {
    fn default() -> Self {
        NavigateOptions {
            replace: false,
            scroll: true,
        }
    }
}

fn go(url: RwSignal<Url>, href: &str, options: NavigateOptions) {
    let Some(window) = web_sys::window() else {
        return;
    };
    if let Ok(history) = window.history() {
        let state = wasm_bindgen::JsValue::NULL;
        let _ = if options.replace {
            history.replace_state_with_url(&state, "", Some(href))
        } else {
            history.push_state_with_url(&state, "", Some(href))
        };
    }
    url.set(current());
    if options.scroll {
        window.scroll_to_with_x_and_y(0.0, 0.0);
    }
}

/// Installs the location signal: call once, above every page.
pub fn provide() {
    let url = RwSignal::new(current());
    provide_context(Nav(url));
    let Some(window) = web_sys::window() else {
        return;
    };
    // Back and Forward.
    let pop = Closure::<dyn Fn(web_sys::Event)>::new(move |_| url.set(current()));
    let _ = window.add_event_listener_with_callback("popstate", pop.as_ref().unchecked_ref());
    pop.forget();
    // A plain click on a link to one of the app's pages navigates in place; a click with a
    // modifier, on a download, on another target or site, or on the API is the browser's.
    let click = Closure::<dyn Fn(web_sys::MouseEvent)>::new(move |ev: web_sys::MouseEvent| {
        if ev.default_prevented()
            || ev.button() != 0
            || ev.meta_key()
            || ev.ctrl_key()
            || ev.shift_key()
            || ev.alt_key()
        {
            return;
        }
        let Some(a) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| e.closest("a[href]").ok().flatten())
            .and_then(|e| e.dyn_into::<web_sys::HtmlAnchorElement>().ok())
        else {
            return;
        };
        let here = web_sys::window().and_then(|w| w.location().origin().ok());
        if a.has_attribute("download")
            || !matches!(a.target().as_str(), "" | "_self")
            || Some(a.origin()) != here
            || a.pathname().starts_with("/api/")
        {
            return;
        }
        ev.prevent_default();
        let href = format!("{}{}{}", a.pathname(), a.search(), a.hash());
        go(url, &href, NavigateOptions::default());
    });
    if let Some(doc) = window.document() {
        let _ = doc.add_event_listener_with_callback("click", click.as_ref().unchecked_ref());
    }
    click.forget();
}

/// The current path.
pub struct Location {
    pub pathname: Memo<String>,
}

pub fn use_location() -> Location {
    let url = nav();
    Location {
        pathname: Memo::new(move |_| url.with(|u| u.path.clone())),
    }
}

/// The current query.
pub fn use_query_map() -> Memo<Query> {
    let url = nav();
    Memo::new(move |_| url.with(|u| u.query.clone()))
}

/// Moves to `href` (a path with its query).
pub fn use_navigate() -> impl Fn(&str, NavigateOptions) + Clone + Send + Sync + 'static {
    let url = nav();
    move |href: &str, options: NavigateOptions| go(url, href, options)
}

/// A link to one of the app's pages, marked `aria-current="page"` while it is shown (`exact`:
/// only on that very path, not below it).
#[component]
pub fn A(href: &'static str, #[prop(optional)] exact: bool, children: Children) -> impl IntoView {
    let path = use_location().pathname;
    let current = move || {
        path.with(|p| {
            p == href || (!exact && p.strip_prefix(href).is_some_and(|r| r.starts_with('/')))
        })
        .then_some("page")
    };
    view! { <a href=href aria-current=current>{children()}</a> }
}
