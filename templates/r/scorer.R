# mlserve's scorer for R `crate` models: the REST contract of mlflow::mlflow_rfunc_serve, with only httpuv
# and jsonlite (the R mlflow package is not needed).
#
#   Rscript scorer.R <model dir> <endpoint>     endpoint: unix:<socket path> | <host>:<port>
#
# Same answers as mlflow's R server, byte for byte, for every route but two: without the swagger package
# (not in Debian), `/` and `/swagger.json` answer as mlflow's does with options(mlflow.swagger = FALSE):
# 200 text/html "<html></html>". Errors in any handler become mlflow's 404 "Invalid Request.  <message>".

`%or%` <- function(value, fallback) if (is.null(value)) fallback else value

# --- the model --------------------------------------------------------------------------------------

# The crate flavor's `model` file from MLmodel, without the yaml package: the first `model:` key indented
# under `crate:` (mlflow's R package writes block style), or inside a one-line `crate: {...}`. mlflow itself
# always reads crate.bin, the only name it writes; this honours the field and falls back to crate.bin.
crate_model_file <- function(model_dir) {
  lines <- readLines(file.path(model_dir, "MLmodel"), warn = FALSE)
  indent <- function(line) nchar(sub("^( *).*$", "\\1", line))
  start <- grep("^ *crate: *(#.*)?$", lines)
  if (length(start) == 0) {
    # The flow style, {version: 0.1.0, model: crate.bin}, on one line.
    flow <- regmatches(lines, regexec("^ *crate: *\\{.*\\bmodel: *([^,}]+)", lines))
    found <- Filter(function(m) length(m) == 2, flow)
    if (length(found) > 0) return(gsub("^['\"]|['\"]$", "", trimws(found[[1]][[2]])))
    if (length(grep("^ *crate:", lines)) == 0) stop("MLmodel in ", model_dir, " has no crate flavor.")
    return("crate.bin")
  }
  level <- indent(lines[[start[[1]]]])
  for (line in lines[-seq_len(start[[1]])]) {
    if (grepl("^ *(#.*)?$", line)) next
    if (indent(line) <= level) break
    if (grepl("^ *model: *", line)) {
      value <- trimws(sub("^ *model: *", "", line))
      return(gsub("^['\"]|['\"]$", "", value))
    }
  }
  "crate.bin"
}

load_crate <- function(model_dir) {
  unserialize(readRDS(file.path(model_dir, crate_model_file(model_dir))))
}

predict_crate <- function(model, data) do.call(model, list(data))

# --- request parsing (the rules of mlflow's R parse_json, message for message) ---------------------------

# Ragged rows of a split `data` (a list once simplified) are padded with NA to the longest row.
split_rows <- function(data) {
  if (!any(class(data) == "list")) return(data)
  width <- max(sapply(data, length))
  padded <- lapply(data, function(row) append(row, rep(NA, width - length(row))))
  Reduce(rbind, padded)
}

split_frame <- function(split) {
  keys <- names(split)
  unknown <- setdiff(keys, c("columns", "index", "data"))
  if (length(unknown) != 0 || !("data" %in% keys)) {
    stop(paste("Invalid input. Make sure the input json data is in 'split' format.", keys))
  }
  data <- split_rows(split$data)
  frame <- data.frame(data, row.names = split$index)
  names(frame) <- split$columns
  frame
}

json_frame <- function(text) {
  json <- jsonlite::fromJSON(text, simplifyVector = TRUE)
  fields <- intersect(names(json), c("dataframe_split", "dataframe_records"))
  if (length(fields) != 1) {
    # paste() is vectorised over the field names and stop() joins the pieces, as in mlflow.
    stop(paste(
      "Invalid input. The input must contain 'dataframe_split' or 'dataframe_records' but not both.",
      "Got input fields", names(json)
    ))
  }
  if (fields[[1]] == "dataframe_split") split_frame(json$dataframe_split) else json$dataframe_records
}

# The content type is the whole header, parameters included: only these two exact values are accepted.
request_frame <- function(req) {
  text <- rawToChar(req$rook.input$read())
  content_type <- strsplit(req$HEADERS, "\n")$`content-type` %or% "application/json"
  switch(content_type,
    "application/json" = json_frame(text),
    "text/csv" = utils::read.csv(text = text, stringsAsFactors = FALSE),
    stop("Unsupported input format.")
  )
}

# --- responses ----------------------------------------------------------------------------------------

JSON_UTF8 <- "application/json; charset=UTF-8"

respond <- function(status, content_type, body) {
  list(status = status, headers = list("Content-Type" = content_type), body = body)
}

json_response <- function(value, ...) {
  respond(200L, JSON_UTF8, charToRaw(enc2utf8(jsonlite::toJSON(value, auto_unbox = TRUE, digits = NA, ...))))
}

invalid_request <- function(message) {
  respond(404L, "text/plain; charset=UTF-8", charToRaw(enc2utf8(paste("Invalid Request. ", message))))
}

empty_page <- function(req, model) respond(200L, "text/html", "<html></html>")

invocations <- function(req, model) {
  # simplifyVector is not a toJSON option; mlflow passes it and jsonlite ignores it. Kept for parity.
  json_response(predict_crate(model, request_frame(req)), simplifyVector = TRUE)
}

# The deprecated route: the body as a list, turned into a data frame as it comes.
predict_deprecated <- function(req, model) {
  body <- req$rook.input$read()
  data <- if (length(body) > 0) {
    jsonlite::fromJSON(rawToChar(body), simplifyDataFrame = FALSE, simplifyMatrix = FALSE)
  } else {
    data.frame()
  }
  json_response(predict_crate(model, as.data.frame(data)))
}

ping <- function(req, model) respond(200L, JSON_UTF8, "")

# mlflow serves the swagger package's static files here; a file it does not have fails with R's error
# for rawToChar(NULL). The swagger package is not installed, so every such path ends with that error.
static_file <- function(req, model) rawToChar(NULL)

invalid_path <- function(req, model) stop("Invalid path.")

# Tried in order against the path, whatever the method; the first match answers.
ROUTES <- list(
  "^/swagger.json" = empty_page,
  "^/$" = empty_page,
  "^/predict" = predict_deprecated,
  "^/ping" = ping,
  "^/invocation" = invocations,
  "^/[^/]*$" = static_file,
  ".*" = invalid_path
)

handle <- function(req, model) {
  tryCatch(
    {
      matched <- vapply(names(ROUTES), function(pattern) grepl(pattern, req$PATH_INFO), logical(1))
      ROUTES[matched][[1]](req, model)
    },
    error = function(e) invalid_request(conditionMessage(e))
  )
}

# --- main ---------------------------------------------------------------------------------------------

main <- function(args) {
  if (length(args) != 2) stop("usage: Rscript scorer.R <model dir> <unix:socket path | host:port>")
  model_dir <- args[[1]]
  endpoint <- args[[2]]
  model <- tryCatch(load_crate(model_dir), error = function(e) {
    # The last line mlserve shows when a scorer fails to start: say what failed, not just "Execution halted".
    message("mlserve R scorer: cannot load the crate model in ", model_dir, ": ", conditionMessage(e))
    quit(save = "no", status = 1)
  })
  app <- list(call = function(req) handle(req, model))

  if (startsWith(endpoint, "unix:")) {
    # umask 077 while the socket is created: only this user may connect.
    httpuv::startPipeServer(substring(endpoint, 6), strtoi("077", 8L), app)
  } else {
    colon <- regexpr(":[0-9]+$", endpoint)
    if (colon < 0) stop("endpoint must be unix:<socket path> or <host>:<port>, not ", endpoint)
    host <- gsub("^\\[|\\]$", "", substring(endpoint, 1, colon - 1))
    httpuv::startServer(host, as.integer(substring(endpoint, colon + 1)), app)
  }

  message("mlserve R scorer listening on ", endpoint)
  # SIGTERM ends Rscript with R's default handling; SIGINT interrupts service() and ends it too.
  repeat httpuv::service(1000)
}

main(commandArgs(trailingOnly = TRUE))
