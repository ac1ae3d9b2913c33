// Records every CSP violation on the host page, so that a test can read them back.
window.statusdTestViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.statusdTestViolations.push(e.violatedDirective + " " + e.blockedURI);
});
