# Golden values for evmeta.harmonize.covariance.shared_control_covariance, from metafor::vcalc.
# Run from the repository root:  Rscript tests/reference/shared_control_reference.R
# Writes tests/reference/shared_control_reference.json (committed; tests read it, CI needs no R).
#
# vcalc(grp1, grp2, w1, w2) gives the correlation a shared group induces between two
# contrasts, r = (1/w_c) / sqrt((1/w_i + 1/w_c) (1/w_j + 1/w_c)), with group sizes as the
# weights. This equals the Gleser-Olkin covariance of mean differences (s_c^2 / n_c) when
# all arms of a study share one SD, and that of log ratios of means (s_c^2 / (n_c m_c^2))
# when all arms share one coefficient of variation: the fixture is built that way.
suppressMessages({library(metafor); library(jsonlite)})

d <- data.frame(
  study   = c("A", "A", "A", "B", "B", "C", "D", "D", "D", "D"),
  arm     = c("A1", "A2", "A3", "B1", "B2", "C1", "D1", "D2", "D3", "D4"),
  control = c("A0", "A0", "A0", "B0", "B0", "C0", "D0", "D0", "D0", "D0"),
  n_t     = c(6, 8, 7, 10, 12, 9, 5, 6, 5, 7),
  n_c     = c(5, 5, 5, 11, 11, 9, 8, 8, 8, 8),
  m_t     = c(32, 28, 35, 14.5, 12.1, 50, 7.2, 6.1, 8.4, 5.5),
  m_c     = c(45, 45, 45, 20.3, 20.3, 61, 9.9, 9.9, 9.9, 9.9),
  s       = c(6, 6, 6, 3.1, 3.1, 12, 1.4, 1.4, 1.4, 1.4),
  cv      = c(0.2, 0.2, 0.2, 0.15, 0.15, 0.25, 0.3, 0.3, 0.3, 0.3)
)
out <- list(metafor_version = as.character(packageVersion("metafor")), r_version = R.version.string,
            data = d)

md <- escalc("MD", m1i = m_t, sd1i = s, n1i = n_t, m2i = m_c, sd2i = s, n2i = n_c, data = d)
V_md <- vcalc(vi, cluster = study, grp1 = arm, grp2 = control, w1 = n_t, w2 = n_c, data = md)
out$MD <- list(yi = as.numeric(md$yi), vi = as.numeric(md$vi), V = unname(as.matrix(V_md)))

rom <- escalc("ROM", m1i = m_t, sd1i = cv * m_t, n1i = n_t, m2i = m_c, sd2i = cv * m_c, n2i = n_c, data = d)
V_rom <- vcalc(vi, cluster = study, grp1 = arm, grp2 = control, w1 = n_t, w2 = n_c, data = rom)
out$ROM <- list(yi = as.numeric(rom$yi), vi = as.numeric(rom$vi), V = unname(as.matrix(V_rom)))

# The same MD model fitted by rma.mv with V and a random intercept per study (REML).
fit <- rma.mv(yi, V_md, random = ~ 1 | study, data = md, method = "REML")
out$MD_rma_mv <- list(estimate = as.numeric(fit$b), se = as.numeric(fit$se), sigma2 = as.numeric(fit$sigma2))

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, dataframe = "columns"),
           "tests/reference/shared_control_reference.json")
