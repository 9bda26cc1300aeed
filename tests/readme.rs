//! Every example in README.md that is marked `<!-- example: PATH -->` is the file at PATH (less its
//! first line, a banner saying so), which the test suite builds and runs: keep them identical.

#[test]
fn readme_examples_are_the_tested_files() {
    let readme = include_str!("../README.md");
    let root = env!("CARGO_MANIFEST_DIR");
    let mut checked = 0;
    for marked in readme.split("<!-- example: ").skip(1) {
        let (path, rest) = marked.split_once(" -->\n").expect("marker ends with -->");
        let block = rest
            .strip_prefix("```")
            .and_then(|r| r.split_once('\n'))
            .map(|(_lang, code)| code.split("```").next().unwrap())
            .unwrap_or_else(|| panic!("a code block follows the marker for {path}"));
        let file = std::fs::read_to_string(format!("{root}/{path}"))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let code = file.split_once('\n').map(|(_banner, code)| code).unwrap();
        assert_eq!(block, code, "README.md's example and {path} differ");
        checked += 1;
    }
    assert!(
        checked >= 3,
        "README.md lost its marked examples ({checked} found)"
    );
}

#[test]
fn readme_c_example_stays_short() {
    let example = include_str!("../c-examples/readme.c");
    assert!(
        example.lines().count() <= 27,
        "the README's C example should stay short"
    );
}
