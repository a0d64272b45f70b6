// Starts GOV.UK Frontend's components (service navigation menu, details, etc.). Every page works
// without it; it only adds enhancements.
import { initAll } from '/assets/govuk-frontend.min.js'

initAll()
