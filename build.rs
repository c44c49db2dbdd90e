//! Generates the Rust view of the httpd 2.4 / APR API with bindgen.
//!
//! The header directories come from `apxs`, so the layout of `request_rec`,
//! `server_rec`, `module` and `command_rec` is the one of the httpd the
//! module is built for: bindgen emits compile-time size/offset assertions
//! for every struct, so a mismatch cannot build.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn query(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn missing(what: &str) -> ! {
    panic!(
        "\n\nmod_esf build: {what}.\n\
         On Debian/Ubuntu install the httpd and APR development headers and libclang:\n\
         \n    apt-get install apache2-dev libclang-dev\n\
         \n(or run scripts/install-deps.sh, which the README's commands call).\n"
    );
}

fn main() {
    println!("cargo:rerun-if-changed=include/esf_httpd.h");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=APXS");

    let apxs = env::var("APXS").unwrap_or_else(|_| "apxs".into());
    let Some(httpd_inc) = query(&apxs, &["-q", "INCLUDEDIR"]) else {
        missing("`apxs` was not found (it comes with apache2-dev)")
    };
    let apr_inc = query(&apxs, &["-q", "APR_INCLUDEDIR"]).unwrap_or_default();
    if !PathBuf::from(&httpd_inc).join("httpd.h").exists() {
        missing(&format!("httpd.h is not in {httpd_inc}"));
    }
    // APR's own preprocessor flags (-D_GNU_SOURCE, ...) decide its type sizes.
    let apr_config = query(&apxs, &["-q", "APR_CONFIG"]).unwrap_or_else(|| "apr-1-config".into());
    let apr_flags = query(&apr_config, &["--cppflags", "--includes"]).unwrap_or_default();

    let mut builder = bindgen::Builder::default()
        .header("include/esf_httpd.h")
        .clang_arg(format!("-I{httpd_inc}"))
        .clang_args(apr_flags.split_whitespace().map(str::to_string))
        .allowlist_function("ap_.*|apr_.*")
        .allowlist_type("request_rec|server_rec|conn_rec|module|command_rec|cmd_parms|process_rec|core_dir_config")
        .allowlist_var("MODULE_MAGIC_.*|AP_MPMQ_.*|AP_MPM_PODX_.*|APLOG_.*|OK|DECLINED|DONE|HTTP_.*|M_.*|RSRC_CONF|ACCESS_CONF|OR_.*|APR_HOOK_.*|REQUEST_.*|APR_SUCCESS|AP_MODULE_FLAG_.*|ap_server_conf")
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    if !apr_inc.is_empty() {
        builder = builder.clang_arg(format!("-I{apr_inc}"));
    }
    let bindings = builder
        .generate()
        .unwrap_or_else(|e| missing(&format!("bindgen could not read the httpd headers ({e}); is libclang-dev installed?")));
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("httpd_bindings.rs");
    bindings.write_to_file(out).expect("write httpd bindings");
}
