# Copyright (c) densecl_plugin contributors. All rights reserved.
