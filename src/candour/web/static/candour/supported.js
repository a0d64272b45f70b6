// GOV.UK Frontend's components enhance only when the body has this class. It lives in a file,
// not inline, so the Content-Security-Policy can forbid inline script.
document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' govuk-frontend-supported' : '')
