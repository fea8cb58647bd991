//! Gives librt.so a versioned soname (librt.so.MAJOR), so programs link to
//! the ABI generation they were built against and never to glibc's
//! librt.so.1.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,librt.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
