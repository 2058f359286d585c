/* page.h - the web page of `stylenet serve` (GET /): plain HTML, CSS and JavaScript in the binary,
 * no external resources.  A person picks or drops a photo; the page shows it, POSTs it to
 * /predict and draws each label group's classes (Style: brand, product) with probability bars.
 * Hooks for tests: #file (the file input), #result with data-state="done" or "error" once an
 * answer is shown, each group as .group[data-group=NAME] with its best class in .best .label. */
#ifndef STYLENET_PAGE_H
#define STYLENET_PAGE_H
extern const char serve_page_html[];
#endif
