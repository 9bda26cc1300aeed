//! The README's C example is built and run by ctest as c-examples/readme.c: keep them identical.

#[test]
fn readme_example_is_the_tested_one() {
    let readme = include_str!("../README.md");
    let example = include_str!("../c-examples/readme.c");
    let code = example
        .split_once('\n')
        .map(|(_banner, rest)| rest)
        .unwrap();
    assert!(
        readme.contains(&format!("```c\n{code}```")),
        "README.md's C example and c-examples/readme.c differ"
    );
    assert!(
        code.lines().count() <= 26,
        "the README example should stay short"
    );
}
